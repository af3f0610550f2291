module testbuild/command-wrapper

// The oldest Go of the cluster image's Debian releases: bookworm's golang-go
// (trixie's is 1.24). Standard library only: the image builds it offline.
go 1.19
