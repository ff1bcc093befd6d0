// The Go client: generated stubs (driftwise/v1) and examples. The versions are those the client
// is built and tested with offline (Debian 12's packages, GOPATH mode: scripts/clients/go.sh);
// module-mode users resolve go.sum with `go mod tidy` against their module proxy.
module github.com/driftwise/driftwise/clients/go

go 1.19

require (
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
