package archive

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
)

// File layout
//
//	[0, L)        zstd frame: tar header + manifest.json + tar padding
//	[L, L+8)      skippable frame header: magic 0x184D2A50, payload size
//	[L+8, ...)    index: "EBINDEX1", uint32 length, JSON (see type index)
//	[..., R)      rest of the skippable payload: a hole, reads as zeros
//	[R, end)      body: zstd frames whose content continues the tar stream,
//	              ending with the tar end-of-archive blocks
//
// zstd and tar skip the skippable frame, so the file is a plain .tar.zst.
// The index exists because zstd's own checks miss some single-byte changes
// (a frame header's unused bit, a larger window size): it holds CRCs of
// the compressed bytes so Walk can catch any change anywhere in the file.

const (
	// DefaultReserve is the default size of the manifest region.
	DefaultReserve = 1 << 20
	minReserve     = 4096
	// The skippable payload size is a uint32; stay well below it.
	maxReserve = 1 << 31

	skippableMagic = 0x184D2A50
	indexMagic     = "EBINDEX1"
	blockSize      = 512 // tar block
	maxIndexSize   = 16 << 20
	maxManifest    = 1 << 30
	maxWindow      = 64 << 20 // refuse frames needing more decoder memory
)

// ErrManifestTooLarge means the compressed manifest does not fit in the
// reserved region. Nothing was renamed; Abort and retry with a larger
// Options.Reserve.
var ErrManifestTooLarge = errors.New("archive: manifest does not fit in the reserved region (raise Options.Reserve)")

// ErrNotBackup means the file is not an archive written by this package.
var ErrNotBackup = errors.New("archive: not an echo-backup archive")

// index is stored at the start of the skippable payload. It uses CRC-32C,
// not sha256: a CRC detects every change of up to 32 consecutive bits for
// certain, which is the damage the index is for (content is sha256'd per
// member already), and it runs in hardware; sha256 over the compressed body
// cost a third of the write speed.
type index struct {
	// ManifestCRC32C covers the manifest frame's compressed bytes.
	ManifestCRC32C uint32 `json:"manifest_crc32c"`
	// Body lists the body's compressed bytes in file order, as the pieces
	// they were written in (side files are copied without being read back).
	Body []extent `json:"body"`
}

type extent struct {
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newCRC() hash.Hash32 { return crc32.New(castagnoli) }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// buildRegion returns the bytes written at offset 0 at Commit. The rest of
// the reserved region stays unwritten so the file stays sparse.
func buildRegion(frame []byte, idx *index, reserve int64) ([]byte, error) {
	ib, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding index: %w", err)
	}
	n := int64(len(frame) + 8 + len(indexMagic) + 4 + len(ib))
	if n > reserve {
		return nil, fmt.Errorf("%w: need %d bytes, reserved %d", ErrManifestTooLarge, n, reserve)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, frame...)
	buf = binary.LittleEndian.AppendUint32(buf, skippableMagic)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(reserve-int64(len(frame))-8))
	buf = append(buf, indexMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ib)))
	return append(buf, ib...), nil
}

// region is what readRegion learned about the manifest region.
type region struct {
	reserve int64  // offset of the body; 0 if unknown
	index   *index // nil if unreadable
}

// readRegion checks the manifest region's layout. It reports problems
// rather than failing so Walk can still list the members.
func readRegion(r io.ReaderAt, size int64) (region, []string) {
	frameEnd, err := frameLen(r, size)
	if err != nil {
		return region{}, []string{fmt.Sprintf("manifest region: reading the manifest frame: %v", err)}
	}
	var hdr [8]byte
	if _, err := r.ReadAt(hdr[:], frameEnd); err != nil {
		return region{}, []string{fmt.Sprintf("manifest region: reading the skippable frame header: %v", err)}
	}
	if binary.LittleEndian.Uint32(hdr[:4]) != skippableMagic {
		return region{}, []string{fmt.Sprintf("manifest region: no skippable frame at offset %d", frameEnd)}
	}
	reg := region{reserve: frameEnd + 8 + int64(binary.LittleEndian.Uint32(hdr[4:]))}
	if reg.reserve > size {
		return reg, []string{fmt.Sprintf("manifest region: ends at %d, past the end of the file (%d bytes)", reg.reserve, size)}
	}
	idx, idxEnd, err := readIndex(r, frameEnd+8, reg.reserve)
	if err != nil {
		return reg, []string{fmt.Sprintf("manifest region: %v", err)}
	}
	var problems []string
	if off, err := firstNonZero(r, idxEnd, reg.reserve); err != nil {
		problems = append(problems, fmt.Sprintf("manifest region: %v", err))
	} else if off >= 0 {
		problems = append(problems, fmt.Sprintf("manifest region: unexpected data at offset %d", off))
	}
	sum, err := sectionCRC(r, 0, frameEnd)
	if err != nil {
		problems = append(problems, fmt.Sprintf("manifest region: %v", err))
	} else if sum != idx.ManifestCRC32C {
		problems = append(problems, "manifest region: the manifest frame's bytes do not match the index (corrupted)")
	}
	reg.index = idx
	return reg, problems
}

// frameLen returns the compressed length of the zstd frame at offset 0 by
// walking its block headers; zstd.Header only describes the frame header.
func frameLen(r io.ReaderAt, limit int64) (int64, error) {
	buf := make([]byte, zstd.HeaderMaxSize)
	n, err := r.ReadAt(buf, 0)
	if n == 0 {
		return 0, fmt.Errorf("reading frame header: %w", errors.Join(ErrNotBackup, err))
	}
	var h zstd.Header
	if err := h.Decode(buf[:n]); err != nil {
		return 0, fmt.Errorf("decoding frame header: %w", errors.Join(ErrNotBackup, err))
	}
	if h.Skippable {
		return 0, fmt.Errorf("file starts with a skippable frame: %w", ErrNotBackup)
	}
	off := int64(h.HeaderSize)
	for last := false; !last; {
		var bh [3]byte
		if _, err := r.ReadAt(bh[:], off); err != nil {
			return 0, fmt.Errorf("reading block header at offset %d: %w", off, err)
		}
		v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last = v&1 == 1
		off += 3
		switch (v >> 1) & 3 {
		case 0, 2: // raw, compressed: Block_Size bytes follow
			off += int64(v >> 3)
		case 1: // RLE: one byte follows
			off++
		default:
			return 0, fmt.Errorf("reserved block type at offset %d", off-3)
		}
		if off > limit {
			return 0, fmt.Errorf("frame runs past the end of the file")
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	if off > limit {
		return 0, fmt.Errorf("frame runs past the end of the file")
	}
	return off, nil
}

// readIndex reads the index at off; it returns where the index ends.
func readIndex(r io.ReaderAt, off, end int64) (*index, int64, error) {
	var hdr [len(indexMagic) + 4]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, 0, fmt.Errorf("reading index header: %w", err)
	}
	if string(hdr[:len(indexMagic)]) != indexMagic {
		return nil, 0, fmt.Errorf("no index at offset %d", off)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[len(indexMagic):]))
	start := off + int64(len(hdr))
	if n > maxIndexSize || start+n > end {
		return nil, 0, fmt.Errorf("index length %d does not fit the region", n)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, start); err != nil {
		return nil, 0, fmt.Errorf("reading index: %w", err)
	}
	idx := &index{}
	if err := json.Unmarshal(buf, idx); err != nil {
		return nil, 0, fmt.Errorf("decoding index: %w", err)
	}
	// encoding/json matches keys case-insensitively and skips unknown ones,
	// so a damaged index could still decode; demand the exact bytes.
	if again, err := json.Marshal(idx); err != nil || !bytes.Equal(again, buf) {
		return nil, 0, errors.New("index is not in canonical form (corrupted)")
	}
	for _, e := range idx.Body {
		if e.Size < 0 || e.Size > 1<<52 { // 4 PiB: keeps sums far from overflow
			return nil, 0, fmt.Errorf("index lists an extent of %d bytes", e.Size)
		}
	}
	return idx, start + n, nil
}

// firstNonZero returns the offset of the first non-zero byte in [off, end),
// or -1. The hole reads as zeros; anything else is damage.
func firstNonZero(r io.ReaderAt, off, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for off < end {
		n := int(min(int64(len(buf)), end-off))
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return 0, fmt.Errorf("reading region at offset %d: %w", off, err)
		}
		for i, b := range buf[:n] {
			if b != 0 {
				return off + int64(i), nil
			}
		}
		off += int64(n)
	}
	return -1, nil
}

func sectionCRC(r io.ReaderAt, off, n int64) (uint32, error) {
	h := newCRC()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, n)); err != nil {
		return 0, fmt.Errorf("reading bytes %d-%d: %w", off, off+n, err)
	}
	return h.Sum32(), nil
}
