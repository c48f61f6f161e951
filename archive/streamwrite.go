package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The stream form (format 3) is written front to back in one pass, for a pipe:
//
//	zstd frame: tar members header.json, then files and dump parts, interleaved
//	zstd frame: tar member manifest.json (the trailer), then tar's end-of-archive blocks
//	skippable frame: "EBSTREAM", the compressed size and CRC-32C of both frames before it
//
// header.json holds what a restore needs to plan before data arrives (the project, the
// sources, the database's name and versions); manifest.json, last, holds everything (every
// member's size and sha256, the row counts). A stream of unknown length (pg_dump) is cut into
// parts of at most PartSize bytes held in memory, each its own member "NAME.part-NNNNNN" with
// its sha256 in a PAX record, so a dump needs no size up front and no disk. The skippable
// frame lets ReadManifest find the trailer of a file at its end, and the reader check every
// compressed byte, as the folder format's index does.

// StreamFormat is the format version of the stream form.
const StreamFormat = 3

// headerName is the first member of a stream.
const headerName = "header.json"

// DefaultPartSize is the largest dump part a stream holds in memory.
const DefaultPartSize = 8 << 20

// PAX records of a dump part. GNU tar ignores SCHILY.xattr records unless asked to restore
// extended attributes, so `tar -x` extracts parts without warnings.
const (
	paxPartOf  = "SCHILY.xattr.user.echobackup.part_of"
	paxPartSum = "SCHILY.xattr.user.echobackup.sha256"
	paxLast    = "SCHILY.xattr.user.echobackup.last"
)

const (
	footerMagic = "EBSTREAM"
	footerSize  = 8 + len(footerMagic) + 8 + 4 + 8 + 4
)

// Split is a member stored as parts in a stream: a pg_dump, whose size is not known before
// it ends. `cat NAME.part-*` gives it back.
type Split struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Parts  int    `json:"parts"`
}

// PartName is the member name of part i (from 1) of a split member.
func PartName(name string, i int) string { return fmt.Sprintf("%s.part-%06d", name, i) }

// NewStream starts an archive in the stream form on out. head is written at once as
// header.json: everything but the members, which Commit's trailer lists. Add, AddStream,
// Leave, Commit and Abort work as for Create; nothing touches the disk.
func NewStream(out io.Writer, head *Manifest, opts Options) (*Writer, error) {
	if opts.Reserve == 0 {
		opts.Reserve = minReserve // unused; keeps withDefaults content
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("archive: starting a stream: %w", err)
	}
	if opts.PartSize <= 0 {
		opts.PartSize = DefaultPartSize
	}
	w := &Writer{path: "-", opts: opts, out: out, buf: make([]byte, 256<<10), names: newTree()}
	w.body = newHashCounter(out, &w.written)
	if w.enc, err = newEncoder(w.body, opts.Level, opts.Concurrency); err != nil {
		return nil, err
	}
	w.main = w.enc
	w.tw = tar.NewWriter(w.enc)
	h := *head
	h.Format, h.Members, h.Split = StreamFormat, nil, nil
	if h.Created.IsZero() {
		h.Created = time.Now().UTC()
	}
	js, err := json.MarshalIndent(&h, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("archive: encoding the stream header: %w", err)
	}
	js = append(js, '\n')
	err = w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: headerName, Mode: 0o644,
		Size: int64(len(js)), ModTime: h.Created.Round(time.Second), Format: tar.FormatUSTAR})
	if err == nil {
		_, err = w.tw.Write(js)
	}
	if err == nil {
		err = w.enc.Flush() // the reader can plan while the first members are read
	}
	if err != nil {
		w.enc.Reset(io.Discard)
		return nil, fmt.Errorf("archive: writing the stream header: %w", err)
	}
	return w, nil
}

func (w *Writer) isStream() bool { return w.out != nil }

// addSplit stores r as parts: each is read whole into memory, then written as a member
// between the others (Add runs in other goroutines meanwhile).
func (w *Writer) addSplit(name string, mode int64, modTime time.Time, r io.Reader) (Member, error) {
	clean, err := cleanName(name, false)
	if err != nil {
		return Member{}, err
	}
	w.mu.Lock()
	switch {
	case w.state != stateOpen:
		w.mu.Unlock()
		return Member{}, errors.New("archive is already committed or aborted")
	case w.splitNames[clean]:
		w.mu.Unlock()
		return Member{}, fmt.Errorf("member %q appears twice", clean)
	}
	if w.splitNames == nil {
		w.splitNames = map[string]bool{}
	}
	w.splitNames[clean] = true
	w.inflight++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight--
		w.mu.Unlock()
	}()
	sp, err := w.writeParts(clean, mode, modTime, r)
	if err != nil {
		return Member{}, err
	}
	w.mu.Lock()
	w.splits = append(w.splits, sp)
	w.mu.Unlock()
	return Member{Name: clean, Type: TypeFile, Size: sp.Size, SHA256: sp.SHA256}, nil
}

func (w *Writer) writeParts(name string, mode int64, modTime time.Time, r io.Reader) (Split, error) {
	buf := make([]byte, w.opts.PartSize)
	total := sha256.New()
	sp := Split{Name: name}
	enc, err := newEncoder(nil, w.opts.StreamLevel, 1)
	if err != nil {
		return sp, err
	}
	var packed bytes.Buffer
	for last := false; !last; {
		n, err := io.ReadFull(r, buf)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			last = true
		case err != nil:
			return sp, fmt.Errorf("reading stream: %w", err)
		}
		part := buf[:n]
		total.Write(part)
		sum := sha256.Sum256(part)
		sp.Parts++
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: PartName(name, sp.Parts), Mode: mode,
			ModTime: modTime.Round(time.Second), Size: int64(n),
			PAXRecords: map[string]string{paxPartOf: name, paxPartSum: fmt.Sprintf("%x", sum)}}
		if last {
			hdr.PAXRecords[paxLast] = "1"
		}
		mem, err := w.reservePart(hdr)
		if err != nil {
			return sp, err
		}
		mem.SHA256 = fmt.Sprintf("%x", sum)
		if err := packPart(enc, &packed, hdr, part); err != nil {
			return sp, err
		}
		if err := w.splice(packed.Bytes(), mem); err != nil {
			return sp, err
		}
		sp.Size += int64(n)
	}
	sp.SHA256 = hexSum(total)
	return sp, nil
}

// reservePart checks and records a part's name as Add does.
func (w *Writer) reservePart(hdr *tar.Header) (Member, error) {
	h, mem, err := normalize(hdr)
	if err != nil {
		return Member{}, err
	}
	*hdr = *h
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.names.check(h.Name, TypeFile, ""); err != nil {
		return Member{}, err
	}
	w.names.add(h.Name, TypeFile)
	return mem, nil
}

// packPart compresses a whole part member (header, content, padding) into a zstd frame of its
// own, in the stream's goroutine: the dump compresses on one core while the files do on another.
func packPart(enc *zstd.Encoder, out *bytes.Buffer, hdr *tar.Header, part []byte) error {
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("building the header of %q: %w", hdr.Name, err)
	}
	// tw is dropped without Close: only the header bytes are wanted.
	out.Reset()
	enc.Reset(out)
	for _, b := range [][]byte{head.Bytes(), part, make([]byte, padding(int64(len(part))))} {
		if _, err := enc.Write(b); err != nil {
			return fmt.Errorf("compressing %q: %w", hdr.Name, err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("compressing %q: %w", hdr.Name, err)
	}
	return nil
}

// splice puts a packed part between two members of the main stream: the main frame ends, the
// part's frame follows as is, and a new main frame starts. zstd and tar read frames in a row
// as one stream.
func (w *Writer) splice(frame []byte, mem Member) error {
	w.mainMu.Lock()
	defer w.mainMu.Unlock()
	if w.err != nil {
		return fmt.Errorf("archive is unusable after an earlier error: %w", w.err)
	}
	err := w.tw.Flush() // the previous member's padding
	if err == nil {
		err = w.enc.Close()
	}
	if err == nil {
		_, err = w.body.Write(frame)
	}
	if err != nil {
		w.err = err
		return fmt.Errorf("archive: adding %q: %w", mem.Name, err)
	}
	w.enc.Reset(w.body)
	w.members = append(w.members, mem)
	return nil
}

// commitStream writes the trailer: the last member, the end of the tar, and the footer.
func (w *Writer) commitStream(m *Manifest) error {
	if err := w.tw.Flush(); err != nil {
		return fmt.Errorf("finishing the last member: %w", err)
	}
	if err := w.enc.Close(); err != nil {
		return fmt.Errorf("finishing the zstd frame: %w", err)
	}
	body := w.body.extent()
	fillManifest(m, w.members, nil)
	m.Format = StreamFormat
	w.mu.Lock()
	m.Split = append([]Split(nil), w.splits...)
	m.Skipped = append(m.Skipped[:0:0], w.skipped...)
	w.mu.Unlock()
	member, err := manifestTar(m)
	if err != nil {
		return err
	}
	frames, err := newEncoder(nil, w.opts.Level, 1)
	if err != nil {
		return err
	}
	trailer := newHashCounter(w.out, &w.written)
	if _, err := trailer.Write(frames.EncodeAll(append(member, make([]byte, 2*blockSize)...), nil)); err != nil {
		return fmt.Errorf("writing the trailer: %w", err)
	}
	if _, err := w.out.Write(footer(body, trailer.extent())); err != nil {
		return fmt.Errorf("writing the trailer: %w", err)
	}
	w.mu.Lock()
	w.state = stateCommitted
	w.mu.Unlock()
	return nil
}

func footer(body, trailer extent) []byte {
	b := binary.LittleEndian.AppendUint32(nil, skippableMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(footerSize-8))
	b = append(b, footerMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(body.Size))
	b = binary.LittleEndian.AppendUint32(b, body.CRC32C)
	b = binary.LittleEndian.AppendUint64(b, uint64(trailer.Size))
	return binary.LittleEndian.AppendUint32(b, trailer.CRC32C)
}

func parseFooter(p []byte) (body, trailer extent, ok bool) {
	if len(p) != footerSize-8 || string(p[:len(footerMagic)]) != footerMagic {
		return body, trailer, false
	}
	p = p[len(footerMagic):]
	body = extent{Size: int64(binary.LittleEndian.Uint64(p)), CRC32C: binary.LittleEndian.Uint32(p[8:])}
	trailer = extent{Size: int64(binary.LittleEndian.Uint64(p[12:])), CRC32C: binary.LittleEndian.Uint32(p[20:])}
	return body, trailer, body.Size >= 0 && trailer.Size >= 0
}
