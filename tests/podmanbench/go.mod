module github.com/gotools-dev/gotools/tests/podmanbench

go 1.26.8

require (
	github.com/containers/podman/v5 v5.8.2
	github.com/gotools-dev/gotools v0.0.0-00010101000000-000000000000
)

require (
	github.com/sirupsen/logrus v1.9.4 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/gotools-dev/gotools => ../..
