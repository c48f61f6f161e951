package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// StreamReader reads the stream form in one pass from an io.Reader: the header first, then
// every member, checked against the trailer once it arrives.
type StreamReader struct {
	frames *frameTracker
	dec    *zstd.Decoder
	in     *countReader
	tr     *tar.Reader
	head   *Manifest
}

// ReadStream reads the stream's header. Nothing after it is checked until Walk.
func ReadStream(r io.Reader) (*StreamReader, error) {
	s := &StreamReader{frames: &frameTracker{r: r, crc: newCRC(), frameCRC: newCRC()}}
	dec, err := zstd.NewReader(s.frames,
		zstd.WithDecoderConcurrency(1), // decodes in Read: the frame tracker sees bytes in order, in one goroutine
		zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, fmt.Errorf("archive: starting the zstd decoder: %w", err)
	}
	s.dec = dec
	s.in = &countReader{r: dec}
	s.tr = tar.NewReader(s.in)
	hdr, err := s.tr.Next()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: reading the first member: %w", ErrNotBackup, err)
	}
	if hdr.Name != headerName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifest {
		s.Close()
		return nil, fmt.Errorf("%w: the first member is %q, not %s", ErrNotBackup, hdr.Name, headerName)
	}
	if s.head, err = decodeManifest(s.tr, headerName); err != nil {
		s.Close()
		return nil, err
	}
	if s.head.Format != StreamFormat {
		s.Close()
		return nil, fmt.Errorf("%w: %s says format %d, this program reads the stream form %d", ErrFormatTooNew, headerName, s.head.Format, StreamFormat)
	}
	return s, nil
}

func decodeManifest(r io.Reader, name string) (*Manifest, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: decoding %s: %w", ErrNotBackup, name, err)
	}
	if m.Format < 1 {
		return nil, fmt.Errorf("%w: %s has no format version", ErrNotBackup, name)
	}
	return m, nil
}

// Header is what header.json says: the manifest without members, sizes or row counts.
func (s *StreamReader) Header() *Manifest { return s.head }

// Close stops the decoder.
func (s *StreamReader) Close() { s.dec.Close() }

// Walk reads every member after the header. Parts of a split member (the dump) go to the
// writer parts returns for its name (nil: dropped, still checked), which is closed after the
// last part when it is an io.Closer; every other member goes to fn (if not nil), as Walk's
// fn for a file. Both see content before it is verified: Walk returns the trailer's manifest,
// and a *VerifyError listing every problem when the trailer is missing, or a member, a size,
// a checksum or a compressed byte does not match. An error from fn or a part's writer stops
// Walk and is returned (wrapped).
func (s *StreamReader) Walk(fn func(hdr *tar.Header, r io.Reader) error, parts func(name string) io.Writer) (*Manifest, error) {
	w := &streamWalk{s: s, fn: fn, parts: parts, names: newTree(), prev: headerName, splits: map[string]*splitState{}}
	w.end = s.in.n + padding(s.in.n)
	err := w.run()
	if err != nil {
		return w.trailer, fmt.Errorf("archive: reading the stream: %w", err)
	}
	if len(w.problems) > 0 {
		return w.trailer, &VerifyError{Problems: w.problems}
	}
	return w.trailer, nil
}

type splitState struct {
	next int
	size int64
	sum  hash.Hash
	to   io.Writer
	done bool
}

type streamWalk struct {
	s        *StreamReader
	fn       func(*tar.Header, io.Reader) error
	parts    func(string) io.Writer
	names    *tree
	seen     []Member
	splits   map[string]*splitState
	order    []string
	trailer  *Manifest
	prev     string
	end      int64
	problems []string
}

func (w *streamWalk) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

func (w *streamWalk) run() error {
	for {
		hdr, err := w.s.tr.Next()
		if err == io.EOF {
			w.finish()
			return nil
		}
		if err != nil {
			w.problem("reading the member after %q: %v (truncated or damaged stream)", w.prev, err)
			w.closeParts()
			return nil
		}
		w.prev = hdr.Name
		if w.trailer != nil {
			w.problem("member %q comes after the trailer %s", hdr.Name, manifestName)
		}
		if hdr.Name == manifestName && hdr.Typeflag == tar.TypeReg && w.trailer == nil {
			if err := w.readTrailer(hdr); err != nil {
				w.problem("%v", err)
				w.closeParts()
				return nil
			}
		} else if stop, err := w.member(hdr); err != nil || stop {
			w.closeParts()
			return err
		}
		w.end = w.s.in.n + padding(w.s.in.n)
	}
}

func (w *streamWalk) readTrailer(hdr *tar.Header) error {
	if hdr.Size > maxManifest {
		return fmt.Errorf("%s is %d bytes", manifestName, hdr.Size)
	}
	m, err := decodeManifest(w.s.tr, manifestName)
	if err != nil {
		return err
	}
	w.trailer = m
	return nil
}

// member checks one member and hands it on; stop is true after a decoding error.
func (w *streamWalk) member(hdr *tar.Header) (stop bool, err error) {
	typ, terr := memberType(hdr.Typeflag)
	clean, cerr := cleanName(hdr.Name, hdr.Typeflag == tar.TypeDir)
	safe := terr == nil && cerr == nil && clean == hdr.Name
	if !safe {
		w.problem("member %q has an unsafe or unclean name or an unsupported type", hdr.Name)
	} else {
		hardlink := ""
		if hdr.Typeflag == tar.TypeLink {
			hardlink = hdr.Linkname
		}
		if err := w.names.check(hdr.Name, typ, hardlink); err != nil {
			w.problem("%v", err)
			safe = false
		} else {
			w.names.add(hdr.Name, typ)
		}
	}
	content := &contentReader{r: w.s.tr, h: sha256.New()}
	var to io.Writer
	split, isPart := hdr.PAXRecords[paxPartOf]
	if isPart && safe {
		to = w.part(hdr, split)
	} else if safe && w.fn != nil {
		if err := w.fn(hdr, content); err != nil && content.err == nil {
			return false, fmt.Errorf("member %q: %w", hdr.Name, err)
		}
	}
	if to != nil {
		if _, err := io.Copy(to, content); err != nil && content.err == nil {
			return false, fmt.Errorf("member %q: %w", hdr.Name, err)
		}
	}
	if _, err := io.Copy(io.Discard, content); err != nil || content.err != nil {
		w.problem("reading member %q: %v (truncated or damaged stream)", hdr.Name, errors.Join(err, content.err))
		return true, nil
	}
	mem := Member{Name: hdr.Name, Type: typ, Size: hdr.Size, Linkname: hdr.Linkname, Sparse: IsSparse(hdr)}
	if typ == TypeFile {
		mem.SHA256 = hexSum(content.h)
	}
	if typ != TypeSymlink && hdr.Typeflag != tar.TypeLink {
		mem.Linkname = ""
	}
	w.seen = append(w.seen, mem)
	if isPart && safe {
		w.endPart(hdr, split, mem.SHA256)
	}
	return false, nil
}

// part checks a part's place in its split member and returns where its content goes.
func (w *streamWalk) part(hdr *tar.Header, split string) io.Writer {
	st := w.splits[split]
	if st == nil {
		st = &splitState{next: 1, sum: sha256.New()}
		if w.parts != nil {
			st.to = w.parts(split)
		}
		w.splits[split] = st
		w.order = append(w.order, split)
	}
	if st.done || hdr.Name != PartName(split, st.next) {
		w.problem("member %q is out of place among the parts of %q", hdr.Name, split)
		st.to = nil // a dump with a hole or a repeat must not load
		return io.Discard
	}
	st.next++
	if st.to == nil {
		return st.sum
	}
	return io.MultiWriter(st.sum, st.to)
}

func (w *streamWalk) endPart(hdr *tar.Header, split, sum string) {
	st := w.splits[split]
	st.size += hdr.Size
	if want := hdr.PAXRecords[paxPartSum]; want != sum {
		w.problem("part %q: content sha256 is %s, its header says %s", hdr.Name, sum, want)
	}
	if hdr.PAXRecords[paxLast] == "1" {
		st.done = true
		if c, ok := st.to.(io.Closer); ok {
			c.Close()
		}
	}
}

// closeParts ends the parts' writers after a failure, so their readers stop waiting.
func (w *streamWalk) closeParts() {
	for _, st := range w.splits {
		if c, ok := st.to.(*io.PipeWriter); ok && !st.done {
			c.CloseWithError(errors.New("the stream ended before the last part"))
		}
	}
	if w.parts == nil || w.s.head.Database == nil {
		return
	}
	if _, started := w.splits[w.s.head.Database.Member]; !started {
		if c, ok := w.parts(w.s.head.Database.Member).(*io.PipeWriter); ok {
			c.CloseWithError(errors.New("the stream ended before the dump"))
		}
	}
}

// finish runs after tar reported the end of the archive.
func (w *streamWalk) finish() {
	if w.s.in.n-w.end != 2*blockSize {
		w.problem("the end-of-archive marker after %q is missing (truncated stream?)", w.prev)
	}
	if n, err := io.Copy(io.Discard, w.s.in); err != nil {
		w.problem("decoding after the end-of-archive marker: %v", err)
	} else if n > 0 {
		w.problem("%d bytes of data after the end-of-archive marker", n)
	}
	w.problems = append(w.problems, w.s.frames.check()...)
	if w.trailer == nil {
		w.problem("the trailer %s is missing (truncated stream?)", manifestName)
		w.closeParts()
		return
	}
	w.compare()
	w.closeParts()
}

// compare checks what was read against the trailer.
func (w *streamWalk) compare() {
	m, head := w.trailer, w.s.head
	if m.Format != StreamFormat {
		w.problem("the trailer says format %d", m.Format)
	}
	if !reflect.DeepEqual(m.Sources, head.Sources) || m.Project.Name != head.Project.Name {
		w.problem("the trailer's project or sources differ from the header's")
	}
	if (m.Database == nil) != (head.Database == nil) || (m.Database != nil && m.Database.Member != head.Database.Member) {
		w.problem("the trailer's database differs from the header's")
	}
	if !slices.Equal(m.Members, w.seen) {
		w.problem("%s", describeDiff(m.Members, w.seen))
	}
	listed := map[string]bool{}
	for _, sp := range m.Split {
		listed[sp.Name] = true
		st := w.splits[sp.Name]
		switch {
		case st == nil:
			w.problem("the parts of %q are missing", sp.Name)
		case !st.done || st.next-1 != sp.Parts:
			w.problem("%q: %d parts read, the trailer says %d", sp.Name, st.next-1, sp.Parts)
		case st.size != sp.Size || hexSum(st.sum) != sp.SHA256:
			w.problem("%q: %d bytes with sha256 %s, the trailer says %d bytes with %s", sp.Name, st.size, hexSum(st.sum), sp.Size, sp.SHA256)
		}
	}
	for _, name := range w.order {
		if !listed[name] {
			w.problem("parts of %q are not in the trailer", name)
		}
	}
	if m.Database != nil && !listed[m.Database.Member] {
		w.problem("the dump %q is not in the trailer", m.Database.Member)
	}
}

// describeDiff names the first difference between the trailer's members and those read.
func describeDiff(want, got []Member) string {
	for i := 0; i < min(len(want), len(got)); i++ {
		if !reflect.DeepEqual(want[i], got[i]) {
			return fmt.Sprintf("member %q (%s, %d bytes, sha256 %s) differs from the trailer's %q (%s, %d bytes, sha256 %s)",
				got[i].Name, got[i].Type, got[i].Size, got[i].SHA256, want[i].Name, want[i].Type, want[i].Size, want[i].SHA256)
		}
	}
	if len(got) < len(want) {
		return fmt.Sprintf("member %q is missing", want[len(got)].Name)
	}
	return fmt.Sprintf("member %q is not in the trailer", got[len(want)].Name)
}

// frameTracker follows the zstd frames of the compressed bytes as the decoder reads them, to
// compare them with the footer: zstd's own checks miss some changes (a frame header's unused
// bit, a larger window size).
type frameTracker struct {
	r        io.Reader
	off      int64
	crc      hash.Hash32 // all bytes so far
	frameCRC hash.Hash32 // the current frame's
	st       int
	need     int64
	hbuf     []byte
	fhd      byte
	skip     bool
	payload  []byte
	frames   []seenFrame
	bad      string
}

type seenFrame struct {
	end       int64
	cumCRC    uint32 // of every byte up to end
	size      int64
	crc       uint32
	skippable bool
	payload   []byte
}

const (
	ftMagic = iota
	ftFHD
	ftHeaderRest
	ftBlockHeader
	ftBlockBody
	ftChecksum
	ftSkipSize
	ftSkipBody
)

func (f *frameTracker) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.see(p[:n])
	return n, err
}

func (f *frameTracker) see(p []byte) {
	for len(p) > 0 && f.bad == "" {
		if f.st == ftMagic && len(f.hbuf) == 0 {
			f.frameCRC.Reset()
			f.need = 4
		}
		k := int(min(int64(len(p)), f.need))
		chunk := p[:k]
		f.crc.Write(chunk)
		f.frameCRC.Write(chunk)
		f.off += int64(k)
		f.need -= int64(k)
		p = p[k:]
		switch f.st {
		case ftMagic, ftFHD, ftBlockHeader, ftSkipSize:
			f.hbuf = append(f.hbuf, chunk...)
		case ftSkipBody:
			if len(f.payload) < footerSize {
				f.payload = append(f.payload, chunk[:min(len(chunk), footerSize-len(f.payload))]...)
			}
		}
		if f.need == 0 {
			f.step()
		}
	}
}

// step moves to the next part of the frame once the current one is complete.
func (f *frameTracker) step() {
	h := f.hbuf
	f.hbuf = f.hbuf[:0]
	switch f.st {
	case ftMagic:
		switch magic := binary.LittleEndian.Uint32(h); {
		case magic == 0xFD2FB528:
			f.st, f.need = ftFHD, 1
		case magic&0xFFFFFFF0 == 0x184D2A50:
			f.st, f.need, f.skip = ftSkipSize, 4, true
		default:
			f.bad = fmt.Sprintf("no zstd frame at compressed offset %d", f.off-4)
		}
	case ftFHD:
		f.fhd = h[0]
		single := f.fhd&0x20 != 0
		n := int64([]int{0, 1, 2, 4}[f.fhd&3])
		switch f.fhd >> 6 {
		case 0:
			if single {
				n++
			}
		case 1:
			n += 2
		case 2:
			n += 4
		case 3:
			n += 8
		}
		if !single {
			n++
		}
		f.st, f.need = ftHeaderRest, n
		if n == 0 {
			f.st, f.need = ftBlockHeader, 3
		}
	case ftHeaderRest:
		f.st, f.need = ftBlockHeader, 3
	case ftBlockHeader:
		v := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		f.fhd = f.fhd&^0x10 | byte(v&1)<<4 // bit 4 (unused in the descriptor) now: last block
		switch (v >> 1) & 3 {
		case 0, 2:
			f.need = int64(v >> 3)
		case 1:
			f.need = 1
		default:
			f.bad = fmt.Sprintf("a reserved zstd block type at compressed offset %d", f.off-3)
			return
		}
		f.st = ftBlockBody
		if f.need == 0 {
			f.afterBlock()
		}
	case ftBlockBody:
		f.afterBlock()
	case ftChecksum:
		f.endFrame()
	case ftSkipSize:
		f.st, f.need = ftSkipBody, int64(binary.LittleEndian.Uint32(h))
		f.payload = f.payload[:0]
		if f.need == 0 {
			f.endFrame()
		}
	case ftSkipBody:
		f.endFrame()
	}
}

func (f *frameTracker) afterBlock() {
	switch {
	case f.fhd&0x10 == 0:
		f.st, f.need = ftBlockHeader, 3
	case f.fhd&0x04 != 0:
		f.st, f.need = ftChecksum, 4
	default:
		f.endFrame()
	}
}

func (f *frameTracker) endFrame() {
	fr := seenFrame{end: f.off, cumCRC: f.crc.Sum32(), crc: f.frameCRC.Sum32(), skippable: f.skip}
	if len(f.frames) > 0 {
		fr.size = f.off - f.frames[len(f.frames)-1].end
	} else {
		fr.size = f.off
	}
	if f.skip {
		fr.payload = bytes.Clone(f.payload)
	}
	f.frames = append(f.frames, fr)
	f.st, f.skip = ftMagic, false
}

// check compares the frames read with the footer: the zstd frames of the body, the trailer's
// frame, the footer, and nothing else.
func (f *frameTracker) check() []string {
	// The decoder stops at the end of the tar, before the footer: read the rest.
	if _, err := io.Copy(io.Discard, f); err != nil {
		return []string{fmt.Sprintf("reading after the trailer: %v", err)}
	}
	if f.bad != "" {
		return []string{f.bad}
	}
	if f.st != ftMagic || len(f.hbuf) > 0 {
		return []string{fmt.Sprintf("the stream ends inside a frame after %d compressed bytes (truncated?)", f.off)}
	}
	n := len(f.frames)
	if n < 3 || !f.frames[n-1].skippable {
		return []string{"the stream's footer is missing (truncated stream?)"}
	}
	body, trailer, ok := parseFooter(f.frames[n-1].payload)
	if !ok || f.frames[n-1].size != int64(footerSize) {
		return []string{"the stream's footer is damaged"}
	}
	tr, last := f.frames[n-2], f.frames[n-3]
	var problems []string
	for _, fr := range f.frames[:n-1] {
		if fr.skippable {
			problems = append(problems, fmt.Sprintf("an unexpected skippable frame ending at compressed offset %d", fr.end))
		}
	}
	if last.end != body.Size || last.cumCRC != body.CRC32C {
		problems = append(problems, fmt.Sprintf("the compressed bytes 0-%d do not match the footer (corrupted)", last.end))
	}
	if tr.size != trailer.Size || tr.crc != trailer.CRC32C {
		problems = append(problems, "the trailer's compressed bytes do not match the footer (corrupted)")
	}
	return problems
}

// IsStreamFile tells whether the archive at path is in the stream form.
func IsStreamFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return false, err
	}
	defer dec.Close()
	hdr, err := tar.NewReader(dec).Next()
	if err != nil {
		return false, nil // not ours either way; the folder format's reader says why
	}
	return hdr.Name == headerName, nil
}

// readStreamManifest reads the trailer of a stream file through its footer, without reading
// the body.
func readStreamManifest(f *os.File) (*Manifest, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	foot := make([]byte, footerSize)
	if st.Size() < int64(footerSize) {
		return nil, fmt.Errorf("%w: no trailer (truncated stream?)", ErrNotBackup)
	}
	if _, err := f.ReadAt(foot, st.Size()-int64(footerSize)); err != nil {
		return nil, err
	}
	_, trailer, ok := parseFooter(foot[8:])
	if binary.LittleEndian.Uint32(foot) != skippableMagic || !ok || trailer.Size > st.Size() {
		return nil, fmt.Errorf("%w: the stream's footer is missing or damaged (truncated stream?)", ErrNotBackup)
	}
	start := st.Size() - int64(footerSize) - trailer.Size
	dec, err := zstd.NewReader(io.NewSectionReader(f, start, trailer.Size), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName {
		return nil, fmt.Errorf("%w: the stream's trailer is unreadable", ErrNotBackup)
	}
	m, err := decodeManifest(tr, manifestName)
	if err != nil {
		return nil, err
	}
	if m.Format != StreamFormat {
		return nil, fmt.Errorf("%w: format %d in a stream trailer", ErrFormatTooNew, m.Format)
	}
	return m, nil
}

// walkStreamFile is Walk for a file in the stream form. The split members (the dump) are
// handed to fn whole, from another goroutine, while fn sees the other members.
func walkStreamFile(f *os.File, fn func(hdr *tar.Header, r io.Reader) error) (*Manifest, error) {
	s, err := ReadStream(f)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	type pipe struct {
		w    *io.PipeWriter
		done chan error
	}
	pipes := map[string]*pipe{}
	parts := func(name string) io.Writer {
		if p := pipes[name]; p != nil {
			return p.w
		}
		pr, pw := io.Pipe()
		p := &pipe{w: pw, done: make(chan error, 1)}
		pipes[name] = p
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: -1}
		go func() {
			var err error
			if fn != nil {
				err = fn(hdr, pr)
			}
			_, _ = io.Copy(io.Discard, pr)
			pr.CloseWithError(err)
			p.done <- err
		}()
		return pw
	}
	m, err := s.Walk(fn, parts)
	var errs []error
	for name, p := range pipes {
		p.w.CloseWithError(errors.New("the stream ended"))
		if perr := <-p.done; perr != nil && !strings.Contains(perr.Error(), "the stream ended") {
			errs = append(errs, fmt.Errorf("member %q: %w", name, perr))
		}
	}
	if err != nil {
		return m, err
	}
	if len(errs) > 0 {
		return m, fmt.Errorf("archive: %w", errors.Join(errs...))
	}
	return m, nil
}
