// Package archive reads and writes echo-backup's one-file backup format: a
// POSIX tar compressed with zstd, whose first member is manifest.json. See
// format.go for the byte layout.
package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/echo-backup/echo-backup/leftover"
)

// Options tune a Writer. Zero values mean the defaults.
type Options struct {
	Level       zstd.EncoderLevel // main stream; default zstd.SpeedFastest
	StreamLevel zstd.EncoderLevel // AddStream members (db dumps); default zstd.SpeedDefault
	Concurrency int               // encoder goroutines per stream; default runtime.NumCPU(); see minParallel
	Reserve     int64             // manifest region; default DefaultReserve (1 MiB)
	// NextPath names the path to try when taken is already there, at Create or at Commit's
	// rename; "" gives up with fs.ErrExist. Nil: the path is the only one. Two writers may
	// race for a name, so Commit still never overwrites: it only moves on. See Writer.Path.
	NextPath func(taken string) string
	// PartSize bounds the parts of an AddStream member in the stream form (NewStream); default
	// DefaultPartSize.
	PartSize int
}

func (o Options) withDefaults() (Options, error) {
	if o.Level == 0 {
		o.Level = zstd.SpeedFastest
	}
	if o.StreamLevel == 0 {
		o.StreamLevel = zstd.SpeedDefault
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.NumCPU()
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	if o.Reserve < minReserve || o.Reserve > maxReserve {
		return o, fmt.Errorf("reserve %d is outside [%d, %d]", o.Reserve, minReserve, maxReserve)
	}
	if o.Level.String() == "invalid" || o.StreamLevel.String() == "invalid" {
		return o, fmt.Errorf("invalid compression level %d or %d", o.Level, o.StreamLevel)
	}
	return o, nil
}

type state int

const (
	stateOpen state = iota
	stateCommitting
	stateCommitted
	stateFailed // Commit failed; only Abort is left
	stateAborted
)

// kindStream marks AddStream names in the tree: they are regular files, but
// land after every Add member, so nothing added earlier may hard-link them.
const kindStream = "stream"

// Writer writes one archive. Add, Commit and Abort are serialized; AddStream
// may run in other goroutines at the same time as Add.
type Writer struct {
	path    string // final name
	tmpPath string
	opts    Options

	// The main stream, guarded by mainMu.
	mainMu  sync.Mutex
	file    *os.File // nil once closed
	body    *hashCounter
	enc     *zstd.Encoder // nil in the repository form
	main    io.Writer     // what tw writes to: enc, or the sink's tar
	tw      *tar.Writer
	buf     []byte
	members []Member
	err     error // sticky: once the tar stream may be inconsistent, no more Adds

	// Shared with AddStream goroutines, guarded by mu.
	mu       sync.Mutex
	state    state
	names    *tree
	streams  []*sideStream // finished, in the order they will be appended
	sides    map[string]*os.File
	inflight int
	skipped  []Skipped

	written atomic.Int64

	// The stream form (NewStream): out is the pipe; AddStream members go out as parts.
	out        io.Writer
	splits     []Split
	splitNames map[string]bool

	// The repository form (NewSink): AddStream members go to objects of their own.
	sink    Sink
	objects []Member
}

// Leave records an entry of a source that the archive does not hold (a socket, a device
// node, a FIFO), so the manifest and the save's output say so.
func (w *Writer) Leave(name, kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.skipped = append(w.skipped, Skipped{Name: name, Kind: kind})
}

// Create starts a new archive whose final path is path. It writes to a
// temporary file in the same folder named ".<base>.<random>.partial", mode
// 0600, so an unfinished backup never looks like one.
func Create(path string, opts Options) (*Writer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("archive: creating %s: %w", path, err)
	}
	// Commit refuses to overwrite anyway; failing now saves a whole backup run.
	free, err := freePath(path, opts.NextPath)
	if err != nil {
		return nil, fmt.Errorf("archive: creating %s: %w", path, err)
	}
	path = free
	f, err := createPartial(path, "")
	if err != nil {
		return nil, fmt.Errorf("archive: creating %s: %w", path, err)
	}
	w, err := newWriter(path, f, opts)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("archive: creating %s: %w", path, err)
	}
	return w, nil
}

func newWriter(path string, f *os.File, opts Options) (*Writer, error) {
	// The manifest region is filled in at Commit; until then it is a hole,
	// so a crashed partial file never decodes as a backup.
	if _, err := f.Seek(opts.Reserve, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seeking past the manifest region: %w", err)
	}
	w := &Writer{
		path:    path,
		tmpPath: f.Name(),
		opts:    opts,
		file:    f,
		buf:     make([]byte, 256<<10),
		names:   newTree(),
		sides:   map[string]*os.File{},
	}
	w.body = newHashCounter(f, &w.written)
	enc, err := newEncoder(w.body, opts.Level, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	w.enc, w.main = enc, enc
	w.tw = tar.NewWriter(enc)
	return w, nil
}

// freePath is the first of path and the names next gives after it that does not exist yet.
func freePath(path string, next func(string) string) (string, error) {
	for {
		_, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if next == nil {
			return "", fs.ErrExist
		}
		if path = next(path); path == "" {
			return "", fs.ErrExist
		}
	}
}

// Path is where the archive is, or will be once committed: with Options.NextPath, Commit may
// have given it a later name than Create's.
func (w *Writer) Path() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.path
}

// createPartial creates a hidden temporary file next to path, held while open so that only
// a leftover of a dead process is swept (package leftover).
func createPartial(path, kind string) (*os.File, error) {
	return leftover.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+kind+".*.partial")
}

// minParallel is the smallest Concurrency that compresses sections of the
// stream in parallel. Below it the encoder runs synchronously in the calling
// goroutine. Measured on 2 vCPUs at SpeedFastest with an input that costs
// CPU to produce, as reading files does: synchronous was fastest (about
// 300 MB/s random, 750 MB/s text, 20 MB RSS); parallel sections were slower
// and took 100-400 MB; klauspost's two-goroutine mode was slower too. Only
// with the input already in memory were parallel sections faster (up to
// 25%, erratically). Parallelism needs cores to spare beyond the goroutine
// that reads and hashes the input.
const minParallel = 4

const encoderWindow = 2 << 20

func newEncoder(w io.Writer, level zstd.EncoderLevel, concurrency int) (*zstd.Encoder, error) {
	if concurrency < minParallel {
		concurrency = 1
	}
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithConcurrentBlocks(concurrency > 1),
		zstd.WithEncoderCRC(true),
		// A 2 MiB window: covers and dumps compress as well at these levels, and two encoders
		// with the default window kept about 20 MB of history for nothing.
		zstd.WithWindowSize(encoderWindow),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("starting zstd encoder: %w", err)
	}
	return enc, nil
}

// hashCounter checksums and counts what it passes on, so the index can
// describe compressed bytes without reading them back.
type hashCounter struct {
	w       io.Writer
	h       hash.Hash32
	n       int64
	written *atomic.Int64
}

func newHashCounter(w io.Writer, written *atomic.Int64) *hashCounter {
	return &hashCounter{w: w, h: newCRC(), written: written}
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	c.written.Add(int64(n))
	return n, err
}

func (c *hashCounter) extent() extent { return extent{Size: c.n, CRC32C: c.h.Sum32()} }

// Written reports the compressed bytes written so far, side files included.
// It is safe to call from any goroutine.
func (w *Writer) Written() int64 { return w.written.Load() }

// Add writes one member to the main stream. For regular files hdr.Size must
// be the exact content size: if r yields more or less, Add fails and the
// Writer is unusable (Abort it), because the tar stream is already committed
// to that size. Wrap r in io.LimitReader to accept a file that grows.
// Directories, symlinks and other header-only members take a nil r.
// Names are cleaned; absolute names and names containing ".." are refused.
func (w *Writer) Add(hdr *tar.Header, r io.Reader) error {
	w.mainMu.Lock()
	defer w.mainMu.Unlock()
	h, mem, err := w.prepare(hdr, r)
	if err != nil {
		return fmt.Errorf("archive: adding %q: %w", hdr.Name, err)
	}
	if err := w.write(h, r, &mem); err != nil {
		w.err = err
		return fmt.Errorf("archive: adding %q: %w", h.Name, err)
	}
	w.members = append(w.members, mem)
	return nil
}

// prepare validates a member before anything is written, so a refused
// member leaves the Writer usable.
func (w *Writer) prepare(hdr *tar.Header, r io.Reader) (*tar.Header, Member, error) {
	if w.err != nil {
		return nil, Member{}, fmt.Errorf("archive is unusable after an earlier error: %w", w.err)
	}
	h, mem, err := normalize(hdr)
	if err != nil {
		return nil, Member{}, err
	}
	if mem.Type == TypeFile && mem.Size > 0 && r == nil {
		return nil, Member{}, errors.New("nil reader for a non-empty file")
	}
	hardlink := ""
	if h.Typeflag == tar.TypeLink {
		hardlink = h.Linkname
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return nil, Member{}, errors.New("archive is already committed or aborted")
	}
	if err := w.names.check(h.Name, mem.Type, hardlink); err != nil {
		return nil, Member{}, err
	}
	w.names.add(h.Name, mem.Type)
	return h, mem, nil
}

// normalize returns a copy of hdr in the form the archive stores.
func normalize(in *tar.Header) (*tar.Header, Member, error) {
	h := *in
	if h.Typeflag == '\x00' { // tar.TypeRegA, deprecated spelling of TypeReg
		h.Typeflag = tar.TypeReg
	}
	typ, err := memberType(h.Typeflag)
	if err != nil {
		return nil, Member{}, err
	}
	if h.Name, err = cleanName(h.Name, h.Typeflag == tar.TypeDir); err != nil {
		return nil, Member{}, err
	}
	if err := normalizeLink(&h); err != nil {
		return nil, Member{}, err
	}
	switch {
	case h.Size < 0:
		return nil, Member{}, fmt.Errorf("negative size %d", h.Size)
	case typ != TypeFile && h.Size != 0:
		return nil, Member{}, fmt.Errorf("size %d on a %s member, which has no content", h.Size, typ)
	}
	if h.Format == tar.FormatUnknown {
		// What tar.Writer does for an unspecified format, made explicit
		// because we pin the format below.
		h.ModTime = h.ModTime.Round(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	}
	// POSIX only: USTAR, or PAX where USTAR cannot say it. Never GNU.
	h.Format = tar.FormatUSTAR | tar.FormatPAX
	return &h, Member{Name: h.Name, Type: typ, Size: h.Size, Linkname: h.Linkname}, nil
}

func normalizeLink(h *tar.Header) error {
	switch h.Typeflag {
	case tar.TypeSymlink:
		if h.Linkname == "" {
			return errors.New("symlink with an empty target")
		}
	case tar.TypeLink:
		name, err := cleanName(h.Linkname, false)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		h.Linkname = name
	default:
		h.Linkname = ""
	}
	return nil
}

func memberType(flag byte) (string, error) {
	switch flag {
	case tar.TypeReg:
		return TypeFile, nil
	case tar.TypeDir:
		return TypeDir, nil
	case tar.TypeSymlink:
		return TypeSymlink, nil
	case tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return TypeOther, nil
	}
	return "", fmt.Errorf("unsupported tar type %q", flag)
}

// write puts header and content into the main stream.
func (w *Writer) write(h *tar.Header, r io.Reader, mem *Member) error {
	if sp, ok := r.(*Sparse); ok && mem.Type == TypeFile {
		if sp.Size != h.Size {
			return fmt.Errorf("sparse content of %d bytes for a header of %d", sp.Size, h.Size)
		}
		return w.writeSparse(h, sp, mem)
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing tar header: %w", err)
	}
	if mem.Type != TypeFile {
		return nil
	}
	if r == nil {
		r = eofReader{}
	}
	sum := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w.tw, sum), io.LimitReader(r, h.Size), w.buf)
	switch {
	case err != nil:
		return fmt.Errorf("copying content: %w", err)
	case n < h.Size:
		return fmt.Errorf("content ended after %d of %d bytes (did the file shrink?)", n, h.Size)
	}
	var one [1]byte
	if k, err := io.ReadAtLeast(r, one[:], 1); k > 0 {
		return fmt.Errorf("content is longer than the %d bytes in the header (did the file grow?)", h.Size)
	} else if err != io.EOF {
		return fmt.Errorf("reading content: %w", err)
	}
	mem.SHA256 = hexSum(sum)
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Commit finishes the body, fills in m.Format and m.Members (m.Created too,
// if zero), writes the manifest region, fsyncs the file, renames it to its
// final path without overwriting anything, fsyncs the folder and removes the
// side files. If Commit fails, Abort to clean up.
func (w *Writer) Commit(m *Manifest) error {
	w.mainMu.Lock()
	defer w.mainMu.Unlock()
	streams, err := w.startCommit()
	if err != nil {
		return fmt.Errorf("archive: committing %s: %w", w.path, err)
	}
	commit := func() error { return w.commit(m, streams) }
	switch {
	case w.isStream():
		commit = func() error { return w.commitStream(m) }
	case w.isSink():
		commit = func() error { return w.commitSink(m) }
	}
	if err := commit(); err != nil {
		w.err = err
		w.mu.Lock()
		if w.state == stateCommitting {
			w.state = stateFailed
		}
		w.mu.Unlock()
		return fmt.Errorf("archive: committing %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) startCommit() ([]*sideStream, error) {
	if w.err != nil {
		return nil, fmt.Errorf("archive is unusable after an earlier error: %w", w.err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.state != stateOpen:
		return nil, errors.New("archive is already committed or aborted")
	case w.inflight > 0:
		return nil, fmt.Errorf("%d AddStream calls are still running", w.inflight)
	}
	w.state = stateCommitting
	return w.streams, nil
}

func (w *Writer) commit(m *Manifest, streams []*sideStream) error {
	frames, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(w.opts.Level),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return fmt.Errorf("starting zstd encoder: %w", err)
	}
	idx, err := w.finishBody(frames, streams)
	if err != nil {
		return err
	}
	fillManifest(m, w.members, streams)
	w.mu.Lock()
	m.Skipped = append(m.Skipped[:0:0], w.skipped...)
	w.mu.Unlock()
	frame, err := manifestFrame(frames, m)
	if err != nil {
		return err
	}
	idx.ManifestCRC32C = crc32.Checksum(frame, castagnoli)
	reg, err := buildRegion(frame, idx, w.opts.Reserve)
	if err != nil {
		return err
	}
	if err := w.publish(reg); err != nil {
		return err
	}
	return w.removeSides(streams)
}

// finishBody appends everything after the main frame and returns the index
// of the body's pieces.
func (w *Writer) finishBody(frames *zstd.Encoder, streams []*sideStream) (*index, error) {
	if err := w.tw.Flush(); err != nil { // pads the last member
		return nil, fmt.Errorf("finishing the last member: %w", err)
	}
	if err := w.enc.Close(); err != nil {
		return nil, fmt.Errorf("finishing the main zstd frame: %w", err)
	}
	idx := &index{Body: []extent{w.body.extent()}}
	for _, s := range streams {
		ext, err := w.appendStream(frames, s)
		if err != nil {
			return nil, fmt.Errorf("appending stream %q: %w", s.name, err)
		}
		idx.Body = append(idx.Body, ext...)
	}
	// Tar's end-of-archive marker: two zero blocks, last in the body.
	ext, err := w.appendFrame(frames, make([]byte, 2*blockSize))
	if err != nil {
		return nil, fmt.Errorf("writing the end-of-archive marker: %w", err)
	}
	idx.Body = append(idx.Body, ext)
	return idx, nil
}

// appendFrame compresses data as one frame at the end of the file.
func (w *Writer) appendFrame(frames *zstd.Encoder, data []byte) (extent, error) {
	hc := newHashCounter(w.file, &w.written)
	if _, err := hc.Write(frames.EncodeAll(data, nil)); err != nil {
		return extent{}, err
	}
	return hc.extent(), nil
}

func fillManifest(m *Manifest, members []Member, streams []*sideStream) {
	m.Format = FormatVersion
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	m.Members = make([]Member, 0, len(members)+len(streams))
	m.Members = append(m.Members, members...)
	for _, s := range streams {
		m.Members = append(m.Members, s.member())
	}
}

// manifestFrame returns manifest.json as a complete tar member (header,
// content, padding) compressed in one zstd frame.
func manifestFrame(frames *zstd.Encoder, m *Manifest) ([]byte, error) {
	member, err := manifestTar(m)
	if err != nil {
		return nil, err
	}
	return frames.EncodeAll(member, nil), nil
}

// manifestTar returns manifest.json as a complete tar member.
func manifestTar(m *Manifest) ([]byte, error) {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	if err := readsBack(js, m); err != nil {
		return nil, err
	}
	js = append(js, '\n')
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     manifestName,
		Mode:     0o644,
		Size:     int64(len(js)),
		ModTime:  m.Created.Round(time.Second),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("writing manifest header: %w", err)
	}
	if _, err := tw.Write(js); err != nil {
		return nil, fmt.Errorf("writing manifest: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("padding manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// readsBack decodes the manifest as verify and restore will, and refuses to commit one that
// would not say the same: a name that JSON could not carry would make every member look
// missing on the day of the restore.
func readsBack(js []byte, m *Manifest) error {
	var back Manifest
	if err := json.Unmarshal(js, &back); err != nil {
		return fmt.Errorf("the manifest does not decode: %w", err)
	}
	if !slices.Equal(back.Members, m.Members) || !slices.Equal(back.Skipped, m.Skipped) {
		return errors.New("the manifest does not read back as written (a member name it cannot carry?)")
	}
	return nil
}

// publish writes the region, makes the file durable and gives it its name.
func (w *Writer) publish(reg []byte) error {
	if _, err := w.file.WriteAt(reg, 0); err != nil {
		return fmt.Errorf("writing the manifest region: %w", err)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", w.tmpPath, err)
	}
	err := w.file.Close()
	w.file = nil
	if err != nil {
		return fmt.Errorf("closing %s: %w", w.tmpPath, err)
	}
	if err := w.rename(); err != nil {
		return err
	}
	w.mu.Lock()
	w.state = stateCommitted
	w.mu.Unlock()
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("syncing folder (%s is in place but may not survive a crash): %w", w.path, err)
	}
	return nil
}

// rename gives the file its final name, the next free one if another writer took it meanwhile.
func (w *Writer) rename() error {
	for {
		err := renameNoReplace(w.tmpPath, w.path)
		if err == nil {
			return nil
		}
		next := ""
		if errors.Is(err, fs.ErrExist) && w.opts.NextPath != nil {
			next = w.opts.NextPath(w.path)
		}
		if next == "" {
			return fmt.Errorf("renaming %s to %s: %w", w.tmpPath, w.path, err)
		}
		w.mu.Lock() // openStream reads the path under mu
		w.path = next
		w.mu.Unlock()
	}
}

// Abort removes the temporary and side files. It is a no-op after a
// successful Commit and safe to call twice. It waits for a running Add to
// return, so stop that Add's reader first.
func (w *Writer) Abort() error {
	w.mainMu.Lock()
	defer w.mainMu.Unlock()
	w.mu.Lock()
	prev := w.state
	if prev != stateCommitted {
		w.state = stateAborted
	}
	sides := w.sides
	w.sides = map[string]*os.File{}
	w.streams = nil
	w.mu.Unlock()

	var errs []error
	if prev != stateCommitted && prev != stateAborted {
		if w.enc != nil {
			w.enc.Reset(io.Discard) // stops its goroutines without writing more
		}
		if w.file != nil {
			w.file.Close()
			w.file = nil
		}
		if w.tmpPath != "" {
			errs = append(errs, removeFile(w.tmpPath))
		}
	}
	for path, f := range sides {
		if f != nil {
			f.Close()
		}
		errs = append(errs, removeFile(path))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("archive: aborting %s: %w", w.path, err)
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
