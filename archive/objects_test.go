package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
)

// memObjects is a repository form kept in memory, as a deduplicating store would keep it.
type memObjects struct {
	mu      sync.Mutex
	tar     bytes.Buffer
	streams map[string]*bytes.Buffer
}

func (m *memObjects) Tar() io.Writer { return &m.tar }

func (m *memObjects) Stream(name string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams == nil {
		m.streams = map[string]*bytes.Buffer{}
	}
	b := &bytes.Buffer{}
	m.streams[name] = b
	return nopCloser{b}, nil
}

func (m *memObjects) OpenTar() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.tar.Bytes())), nil
}

func (m *memObjects) OpenStream(name string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.streams[name].Bytes())), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func writeObjects(t *testing.T) (*memObjects, *Manifest, []entry) {
	t.Helper()
	objs := &memObjects{}
	w, err := NewSink(objs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	entries := append(sampleEntries(), fileEntry("files/data/bad-\xff-name", 0o644, []byte("bytes\n"), 0))
	if _, err := addWhileStreaming(t, w, entries, streamData); err != nil {
		t.Fatal(err)
	}
	m := sampleManifest()
	if err := w.Commit(m); err != nil {
		t.Fatal(err)
	}
	js, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeManifest(js)
	if err != nil {
		t.Fatal(err)
	}
	return objs, back, entries
}

func TestObjectsRoundTrip(t *testing.T) {
	objs, m, entries := writeObjects(t)
	if len(m.Objects) != 1 || m.Objects[0] != "database/dump.sql" {
		t.Fatalf("objects: %v", m.Objects)
	}
	if bytes.Contains(objs.tar.Bytes(), streamData[:4096]) == false {
		t.Error("files.tar is not plain: a deduplicating store needs the bytes as they are")
	}
	got := map[string][]byte{}
	err := WalkObjects(m, objs, false, func(hdr *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[hdr.Name] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg && !bytes.Equal(got[e.hdr.Name], e.data) {
			t.Errorf("%q: content differs", e.hdr.Name)
		}
	}
	if !bytes.Equal(got["database/dump.sql"], streamData) {
		t.Error("the dump differs")
	}
}

func TestObjectsDamageRefused(t *testing.T) {
	cases := map[string]func(o *memObjects){
		"a flipped byte in a file": func(o *memObjects) {
			i := bytes.Index(o.tar.Bytes(), []byte("hello\n"))
			o.tar.Bytes()[i] ^= 1
		},
		"a flipped byte in the dump": func(o *memObjects) { o.streams["database/dump.sql"].Bytes()[1000] ^= 1 },
		"a cut tar":                  func(o *memObjects) { o.tar.Truncate(o.tar.Len() - 2000) },
		"a cut dump":                 func(o *memObjects) { o.streams["database/dump.sql"].Truncate(100) },
		"no end marker":              func(o *memObjects) { o.tar.Truncate(o.tar.Len() - 1024) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			objs, m, _ := writeObjects(t)
			damage(objs)
			err := WalkObjects(m, objs, false, nil)
			mustVerifyError(t, err, name)
		})
	}
}

func TestObjectsMissingMember(t *testing.T) {
	objs, m, _ := writeObjects(t)
	m.Members = append(m.Members[:3:3], append([]Member{{Name: "files/data/ghost", Type: TypeFile, Size: 1, SHA256: sha([]byte("x"))}}, m.Members[3:]...)...)
	err := WalkObjects(m, objs, true, nil)
	if v := mustVerifyError(t, err, "a member the manifest lists but the tar lacks"); !strings.Contains(strings.Join(v.Problems, "\n"), "ghost") {
		t.Errorf("problems do not name it: %v", v.Problems)
	}
}
