// Package e2e holds the end-to-end tests of docker-echobackup. They run the real docker CLI,
// a real Docker engine and `docker compose` against Echo-shaped compose stacks, so every
// test file carries the build tag e2e:
//
//	go test -tags e2e -count=1 -v ./e2e/...   (scripts/test.sh does this after the unit tests)
//
// TestMain builds the compose CLI plugin (from the compose/v5 module pinned in go.mod, cached
// between runs) and docker-echobackup into a temporary DOCKER_CONFIG, so ~/.docker is never
// read or written. Stacks come from testdata/<fixture>/ through NewStack; everything a test
// creates on the engine carries its compose project label or com.echobackup.project and is
// removed by the stack's cleanup. The suite runs serially.
package e2e
