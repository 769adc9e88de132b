//go:build floorkong

// With the floorkong tag, this program links kong and does not use it:
// the cost of kong's package inits (its own, and those of net/url,
// net/netip, regexp, go/doc, encoding/json and os/user, which it imports),
// which every process of a binary that links kong pays before main.

package main

import _ "github.com/alecthomas/kong"
