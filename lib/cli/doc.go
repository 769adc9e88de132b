// Package cli is gotools' command-line layer: the [Applet] registry type,
// dispatch on argv[0] then argv[1] ([Main]), one kong parser per applet run
// ([Run]), decimal-only number types, and the printing of s6-style messages
// ("APPLET: fatal: ...", "APPLET: warning: ...", "APPLET: usage: ...").
//
// It is the only place where an applet's returned error becomes an exit
// code and a stderr line. It deliberately has no configuration or
// environment resolvers: an applet's behaviour depends on argv alone.
package cli
