package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Extent is a run of data in a file with holes.
type Extent struct {
	Offset, Length int64
}

// Sparse is the content of a file with holes, for Writer.Add: the archive then
// holds only the Data extents, in GNU tar's PAX sparse format 1.0, which GNU
// tar, bsdtar and Go's archive/tar read back with the holes. As an io.Reader
// it yields the whole content, zeros in the holes, for readers that do not
// know about holes.
type Sparse struct {
	File io.ReaderAt
	Size int64
	Data []Extent // sorted, not overlapping, within Size
	off  int64
}

// Read yields the logical content.
func (s *Sparse) Read(p []byte) (int, error) {
	if s.off >= s.Size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.Size-s.off)]
	next := s.Size // where the next data starts, at or after off
	for _, e := range s.Data {
		if s.off < e.Offset+e.Length {
			next = e.Offset
			if s.off >= e.Offset {
				n, err := s.File.ReadAt(p[:min(int64(len(p)), e.Offset+e.Length-s.off)], s.off)
				s.off += int64(n)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF // the file shrank
				}
				return n, err
			}
			break
		}
	}
	n := int(min(int64(len(p)), next-s.off))
	clear(p[:n])
	s.off += int64(n)
	return n, nil
}

func (s *Sparse) check() error {
	end := int64(0)
	for _, e := range s.Data {
		if e.Offset < end || e.Length < 0 || e.Offset+e.Length > s.Size {
			return fmt.Errorf("sparse map: extent %d+%d is out of order or past the size %d", e.Offset, e.Length, s.Size)
		}
		end = e.Offset + e.Length
	}
	return nil
}

// IsSparse says whether a header read back by archive/tar was a sparse member.
func IsSparse(hdr *tar.Header) bool {
	return hdr.PAXRecords["GNU.sparse.major"] == "1"
}

// writeSparse writes h as a PAX 1.0 sparse member straight into the stream
// below the tar writer: archive/tar drops GNU.sparse records when writing. The
// layout is a PAX header, a ustar header with a stand-in name, then the
// sparse map as decimal lines padded to a block, then the data extents.
func (w *Writer) writeSparse(h *tar.Header, sp *Sparse, mem *Member) error {
	if err := sp.check(); err != nil {
		return err
	}
	if err := w.tw.Flush(); err != nil { // the previous member's padding
		return err
	}
	sparseMap := encodeSparseMap(sp)
	onTape := int64(len(sparseMap))
	for _, e := range sp.Data {
		onTape += e.Length
	}
	head, err := sparseHeaders(h, sp.Size, onTape)
	if err != nil {
		return err
	}
	if _, err := w.main.Write(append(head, sparseMap...)); err != nil {
		return err
	}
	sum := sha256.New()
	if err := w.copyExtents(sp, sum); err != nil {
		return err
	}
	if _, err := w.main.Write(make([]byte, padding(onTape))); err != nil {
		return err
	}
	mem.SHA256, mem.Sparse = hexSum(sum), true
	return nil
}

// copyExtents writes the data extents and hashes the whole logical content.
func (w *Writer) copyExtents(sp *Sparse, sum hash.Hash) error {
	var done int64
	for _, e := range sp.Data {
		if err := hashZeros(sum, e.Offset-done); err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.MultiWriter(w.main, sum), io.NewSectionReader(sp.File, e.Offset, e.Length), w.buf)
		if err != nil {
			return fmt.Errorf("copying content: %w", err)
		}
		if n < e.Length {
			return fmt.Errorf("content ended at %d of %d bytes (did the file shrink?)", e.Offset+n, sp.Size)
		}
		done = e.Offset + e.Length
	}
	return hashZeros(sum, sp.Size-done)
}

var zeroBlock = make([]byte, 64<<10)

func hashZeros(h hash.Hash, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		h.Write(zeroBlock[:k])
		n -= k
	}
	return nil
}

// encodeSparseMap is the map at the start of the data: the number of
// extents, then offset and length of each, one decimal per line, padded to a
// block. A file that ends in a hole gets a last empty extent at its size, as
// GNU tar writes it, so every reader gives the file its full size.
func encodeSparseMap(sp *Sparse) []byte {
	data := sp.Data
	if n := len(data); n == 0 || data[n-1].Offset+data[n-1].Length < sp.Size {
		data = append(append([]Extent(nil), data...), Extent{Offset: sp.Size})
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", len(data))
	for _, e := range data {
		fmt.Fprintf(&b, "%d\n%d\n", e.Offset, e.Length)
	}
	b.Write(make([]byte, padding(int64(b.Len()))))
	return b.Bytes()
}

// ustarMaxSize is the largest size a ustar header's 11 octal digits hold.
const ustarMaxSize = 1<<33 - 1

// sparseHeaders returns the PAX header block with its records and the ustar
// header that follows it. Everything a ustar field might not hold (name,
// owner, time, size) is in the PAX records, which readers prefer.
func sparseHeaders(h *tar.Header, realSize, onTape int64) ([]byte, error) {
	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     h.Name,
		"GNU.sparse.realsize": strconv.FormatInt(realSize, 10),
		"uid":                 strconv.Itoa(h.Uid),
		"gid":                 strconv.Itoa(h.Gid),
		"mtime":               strconv.FormatInt(h.ModTime.Unix(), 10),
	}
	ustarSize := onTape
	if onTape > ustarMaxSize {
		recs["size"] = strconv.FormatInt(onTape, 10)
		ustarSize = 0
	}
	records := encodePAX(recs)
	xhdr, err := ustarBlock(&tar.Header{Name: "PaxHeaders.0/sparse", Mode: 0o644, Size: int64(len(records))}, tar.TypeXHeader)
	if err != nil {
		return nil, err
	}
	main, err := ustarBlock(&tar.Header{Name: standInName(h.Name), Mode: h.Mode & 0o7777777, Size: ustarSize,
		Uid: min(h.Uid, 0o7777777), Gid: min(h.Gid, 0o7777777), ModTime: ustarTime(h.ModTime)}, tar.TypeReg)
	if err != nil {
		return nil, err
	}
	out := append(xhdr, records...)
	out = append(out, make([]byte, padding(int64(len(records))))...)
	return append(out, main...), nil
}

// encodePAX formats records as "<length> <key>=<value>\n", the length
// counting the whole line, its own digits included; keys sorted.
func encodePAX(recs map[string]string) []byte {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		line := " " + k + "=" + recs[k] + "\n"
		n := len(line) + 1
		for n < len(line)+len(strconv.Itoa(n)) {
			n++
		}
		b.WriteString(strconv.Itoa(n) + line)
	}
	return b.Bytes()
}

// ustarBlock formats one ustar header block with archive/tar, then sets its
// type flag, which archive/tar refuses to write for PAX headers itself.
func ustarBlock(h *tar.Header, flag byte) ([]byte, error) {
	h.Typeflag, h.Format = tar.TypeReg, tar.FormatUSTAR
	var b bytes.Buffer
	if err := tar.NewWriter(&b).WriteHeader(h); err != nil {
		return nil, fmt.Errorf("formatting a sparse member's header: %w", err)
	}
	blk := b.Bytes()[:blockSize]
	blk[156] = flag
	sum := 0
	for i, c := range blk {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk, nil
}

// standInName is what readers that know no sparse files extract the data
// to, as GNU tar names it; it must fit ustar's 100 ASCII bytes.
func standInName(name string) string {
	base := name[strings.LastIndexByte(name, '/')+1:]
	safe := []byte("GNUSparseFile.0/")
	for i := 0; i < len(base) && len(safe) < 99; i++ {
		if c := base[i]; c > ' ' && c < 0x7f {
			safe = append(safe, c)
		}
	}
	if len(safe) == len("GNUSparseFile.0/") {
		safe = append(safe, 'f')
	}
	return string(safe)
}

// ustarTime clamps t to what ustar's 11 octal digits of seconds hold.
func ustarTime(t time.Time) time.Time {
	switch {
	case t.Unix() < 0:
		return time.Unix(0, 0)
	case t.Unix() > ustarMaxSize:
		return time.Unix(ustarMaxSize, 0)
	}
	return time.Unix(t.Unix(), 0)
}
