#!/usr/bin/env bash
# The test command of the README: formatting, vet, staticcheck, then every
# test with the race detector.
set -euo pipefail
cd "$(dirname "$0")"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
go tool staticcheck ./...
go test -race -timeout 20m ./...
