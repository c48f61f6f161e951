package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// session is one psql process kept open, so that several queries and a pg_dump can share
// one transaction snapshot.
type session struct {
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

const endMarker = "__echobackup_end_of_result__"

func (t Target) openSession(ctx context.Context) *session {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{in: inW, out: bufio.NewReader(outR), done: make(chan error, 1)}
	cmd := []string{"psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
		"-U", t.User, "-d", t.Database}
	go func() {
		err := t.exec(ctx, cmd, inR, outW)
		outW.CloseWithError(errors.Join(err, io.ErrUnexpectedEOF))
		inR.CloseWithError(errors.New("psql has exited"))
		s.done <- err
	}()
	return s
}

// query sends SQL and returns the rows it printed, tab-separated.
func (s *session) query(sql string) ([]string, error) {
	if _, err := fmt.Fprintf(s.in, "%s\n\\echo %s\n", sql, endMarker); err != nil {
		return nil, s.failure(err)
	}
	var rows []string
	for {
		line, err := s.out.ReadString('\n')
		if err != nil {
			return nil, s.failure(err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == endMarker {
			return rows, nil
		}
		if line != "" {
			rows = append(rows, line)
		}
	}
}

// failure prefers psql's own exit error, which carries its stderr, to the pipe's.
func (s *session) failure(err error) error {
	s.in.Close()
	if exitErr := <-s.done; exitErr != nil {
		s.done <- exitErr
		return exitErr
	}
	s.done <- nil
	return err
}

func (s *session) close() error {
	_, _ = io.WriteString(s.in, "\\q\n")
	s.in.Close()
	return <-s.done
}
