module github.com/gotools-dev/gotools

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	golang.org/x/sys v0.50.0
)
