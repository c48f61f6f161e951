package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

const (
	benchTotal  = 200 << 20
	benchMember = 4 << 20
)

var benchData []byte // made once: generating it is not what is measured

func benchInput() []byte {
	if benchData == nil {
		benchData = randomBytes(42, benchTotal)
	}
	return benchData
}

// writeBench writes 200 MB of random data as 4 MiB members and returns how
// long the Add calls took.
func writeBench(b *testing.B, path string, opts Options) time.Duration {
	data := benchInput()
	w, err := Create(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for off := 0; off < len(data); off += benchMember {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("files/m%03d", off/benchMember),
			Size: benchMember, Mode: 0o644, ModTime: baseTime}
		if err := w.Add(hdr, bytes.NewReader(data[off:off+benchMember])); err != nil {
			b.Fatal(err)
		}
	}
	adding := time.Since(start)
	if err := w.Commit(&Manifest{}); err != nil {
		b.Fatal(err)
	}
	return adding
}

// BenchmarkAdd reports MB/s for Create+Add+Commit (fsync included) and
// add-MB/s for the Add calls alone.
func BenchmarkAdd(b *testing.B) {
	benchInput()
	for _, conc := range []int{0, minParallel} {
		name := fmt.Sprintf("concurrency=%d", conc)
		if conc == 0 {
			name = fmt.Sprintf("default(NumCPU=%d)", runtime.NumCPU())
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchTotal)
			dir := b.TempDir()
			var adding time.Duration
			for i := 0; i < b.N; i++ {
				path := filepath.Join(dir, fmt.Sprintf("b%d.tar.zst", i))
				adding += writeBench(b, path, Options{Concurrency: conc})
				b.StopTimer()
				os.Remove(path)
				b.StartTimer()
			}
			b.ReportMetric(float64(benchTotal)*float64(b.N)/1e6/adding.Seconds(), "add-MB/s")
		})
	}
}

// BenchmarkWalk reports how fast a 200 MB archive is verified.
func BenchmarkWalk(b *testing.B) {
	path := filepath.Join(b.TempDir(), "walk.tar.zst")
	writeBench(b, path, Options{})
	b.SetBytes(benchTotal)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Walk(path, nil); err != nil {
			b.Fatal(err)
		}
	}
}
