// Command benchdata fills a folder with what a running Echo keeps in ./data, at a chosen size,
// for scripts/bench.sh: cover art and artist images (random bytes behind a JPEG header, so
// they do not compress, as real JPEGs don't), album/artist metadata as JSON and text (which
// compresses about as well as real metadata does), and the few small files Echo writes.
//
//	go run ./scripts/benchdata -dir DIR -scale 1 [-uid 1001 -gid 1001]
//
// Scale 1 is about 1.2 GB of images and 300 MB of metadata. The output is the same for the
// same -scale and -seed. Files are owned by -uid:-gid when run as root. It prints one line:
// "<files> <bytes>".
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// A kind of file: where it goes, how big, and what it holds.
type kind struct {
	dir      string
	ext      string
	budget   int64 // bytes at scale 1
	min, max int   // size of one file in bytes
	fill     func(r *rand.Rand, size int) []byte
}

var kinds = []kind{
	{dir: "covers", ext: ".jpg", budget: 800 << 20, min: 100 << 10, max: 500 << 10, fill: jpegLike},
	{dir: "metadata/artists", ext: ".jpg", budget: 400 << 20, min: 100 << 10, max: 500 << 10, fill: jpegLike},
	{dir: "metadata/albums", ext: ".json", budget: 220 << 20, min: 4 << 10, max: 60 << 10, fill: albumJSON},
	{dir: "metadata/artists", ext: ".txt", budget: 80 << 20, min: 2 << 10, max: 30 << 10, fill: biography},
}

func main() {
	dir := flag.String("dir", "", "the data folder to fill (created if missing)")
	scale := flag.Float64("scale", 1, "1 = about 1.5 GB")
	uid := flag.Int("uid", 1001, "owner of every file (when run as root)")
	gid := flag.Int("gid", 1001, "group of every file (when run as root)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *dir == "" || *scale <= 0 {
		fmt.Fprintln(os.Stderr, "usage: benchdata -dir DIR [-scale N] [-uid N -gid N] [-seed N]")
		os.Exit(2)
	}
	files, bytes, err := generate(*dir, *scale, *seed)
	if err == nil && os.Geteuid() == 0 {
		err = chownTree(*dir, *uid, *gid)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdata:", err)
		os.Exit(1)
	}
	fmt.Println(files, bytes)
}

// job is one file to write; its content depends only on the seed and its index.
type job struct {
	path string
	size int
	k    *kind
	seed uint64
}

func generate(dir string, scale float64, seed uint64) (files, bytes int64, err error) {
	if err := writeFixed(dir); err != nil {
		return 0, 0, err
	}
	jobs := make(chan job, 256)
	var (
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
		nFiles   atomic.Int64
		nBytes   atomic.Int64
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				r := rand.New(rand.NewChaCha8(seedBytes(j.seed)))
				data := j.k.fill(r, j.size)
				if err := os.WriteFile(j.path, data, 0o644); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				nFiles.Add(1)
				nBytes.Add(int64(len(data)))
			}
		})
	}
	// Sizes are drawn up front, in order, so the set of files is the same however the
	// workers interleave.
	plan := rand.New(rand.NewPCG(seed, 0))
	for ki := range kinds {
		k := &kinds[ki]
		if err := os.MkdirAll(filepath.Join(dir, k.dir), 0o755); err != nil {
			close(jobs)
			wg.Wait()
			return 0, 0, err
		}
		budget := int64(float64(k.budget) * scale)
		for i := 1; budget > 0; i++ {
			size := k.min + plan.IntN(k.max-k.min+1)
			budget -= int64(size)
			jobs <- job{path: filepath.Join(dir, k.dir, fmt.Sprintf("%d%s", i, k.ext)), size: size, k: k,
				seed: seed<<32 ^ uint64(ki)<<24 ^ uint64(i)}
		}
	}
	close(jobs)
	wg.Wait()
	return nFiles.Load() + fixedFiles, nBytes.Load(), firstErr
}

func seedBytes(s uint64) (b [32]byte) {
	for i := range 4 {
		for j := range 8 {
			b[i*8+j] = byte((s + uint64(i)*0x9e3779b97f4a7c15) >> (8 * j))
		}
	}
	return b
}

// jpegLike is a JFIF header followed by random bytes and the end-of-image marker.
func jpegLike(r *rand.Rand, size int) []byte {
	b := make([]byte, size)
	for i := 0; i+8 <= size; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00})
	copy(b[size-2:], []byte{0xFF, 0xD9})
	return b
}

var words = strings.Fields(`the of and a in to was is for on with by as at from his her their band album
	record released tour studio live guitar bass drums vocals piano synth song songs single chart debut
	second third final years later early late new york london berlin tokyo paris label producer
	collaboration remaster deluxe edition bonus track acoustic electric ambient jazz rock folk pop soul
	night day light dark river mountain city dream echo silence fire water glass paper heart`)

func sentence(r *rand.Rand, sb *strings.Builder) {
	n := 6 + r.IntN(14)
	for i := range n {
		w := words[r.IntN(len(words))]
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sb.WriteString(w)
		if i < n-1 {
			sb.WriteByte(' ')
		}
	}
	sb.WriteString(". ")
}

// albumJSON is album metadata as a scraper would cache it: tags, a track list, a review
// (long enough to make the drawn size), then spaces to the exact size; it stays valid JSON.
func albumJSON(r *rand.Rand, size int) []byte {
	type track struct {
		Position int     `json:"position"`
		Title    string  `json:"title"`
		Duration int     `json:"durationMs"`
		MBID     string  `json:"mbid"`
		Gain     float64 `json:"replayGain"`
	}
	album := map[string]any{
		"mbid":   uuid(r),
		"title":  words[r.IntN(len(words))] + " " + words[r.IntN(len(words))],
		"year":   1960 + r.IntN(65),
		"genres": []string{words[r.IntN(len(words))], words[r.IntN(len(words))]},
		"label":  words[r.IntN(len(words))] + " records",
	}
	var tracks []track
	for i := range min(40, size/400) {
		tracks = append(tracks, track{Position: i + 1, Title: words[r.IntN(len(words))] + " " +
			words[r.IntN(len(words))], Duration: 60000 + r.IntN(600000), MBID: uuid(r),
			Gain: float64(r.IntN(2000)-1000) / 100})
	}
	album["tracks"] = tracks
	b, _ := json.MarshalIndent(album, "", "  ")
	if rest := size - len(b) - 20; rest > 0 {
		album["review"] = string(prose(r, rest))
		b, _ = json.MarshalIndent(album, "", "  ")
	}
	if len(b) < size {
		b = append(b, strings.Repeat(" ", size-len(b)-1)+"\n"...)
	}
	return b
}

// biography is plain prose.
func biography(r *rand.Rand, size int) []byte { return prose(r, size) }

// prose is sentences and paragraphs of exactly size bytes.
func prose(r *rand.Rand, size int) []byte {
	var sb strings.Builder
	for sb.Len() < size {
		sentence(r, &sb)
		if r.IntN(6) == 0 {
			sb.WriteString("\n\n")
		}
	}
	return []byte(sb.String()[:size])
}

func uuid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff,
		r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
}

const fixedFiles = 4

// writeFixed writes the small files every Echo has (see the layout in Echo's backup docs).
func writeFixed(dir string) error {
	fixed := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"setup.json", 0o644, `{"setupComplete": true, "serverName": "Echo (bench)", "musicPaths": ["/mnt/music"]}` + "\n"},
		{"secrets.env", 0o600, "JWT_SECRET=bench-not-secret\nJWT_REFRESH_SECRET=bench-not-secret-either\n"},
		{"uploads/user-2/avatar.png", 0o640, strings.Repeat("\x89PNG bench avatar ", 600)},
		{"uploads/import/notes.txt", 0o644, "imported from an older Echo\n"},
	}
	for _, f := range fixed {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil { // not subject to umask
			return err
		}
	}
	return nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
