// SPDX-License-Identifier: MIT (see LICENSE)
// Command gotoml is the TOML peer of `reactcfg-bench parse`: pelletier/go-toml v2 (the
// Debian package golang-github-pelletier-go-toml.v2-dev, built in GOPATH mode) decoding
// the same file. `gotoml [--iterations N] FILE` reads FILE once, unmarshals it once to
// warm up and once to size N (default: about 2 s worth, at least 5), then N times, each
// into a fresh map[string]any, and prints the line reactcfg-bench prints:
//
//	format=toml bytes=<n> parse_ms=<median ms> mb_per_s=<bytes / 1e6 / median s>
//
// Before each timed round the previous tree is dropped and runtime.GC() runs outside the
// timer: the counterpart of reactcfg-bench freeing each tree outside the timed part.
// Collections the decoder's own allocations trigger stay inside, as they would in use.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gotoml [--iterations N] FILE")
	os.Exit(1)
}

func parse(data []byte) (time.Duration, error) {
	var v map[string]any
	t0 := time.Now()
	err := toml.Unmarshal(data, &v)
	return time.Since(t0), err
}

func main() {
	iterations := 0
	file := ""
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--iterations" && i+1 < len(args):
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "gotoml: --iterations wants a positive number, not %q\n",
					args[i+1])
				os.Exit(1)
			}
			iterations = n
			i++
		case file == "" && len(args[i]) > 0 && args[i][0] != '-':
			file = args[i]
		default:
			usage()
		}
	}
	if file == "" {
		usage()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotoml:", err)
		os.Exit(1)
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "gotoml: %s: %v\n", file, err)
		os.Exit(1)
	}
	if _, err := parse(data); err != nil { // warm-up
		fail(err)
	}
	runtime.GC()
	one, err := parse(data)
	if err != nil {
		fail(err)
	}
	if iterations == 0 {
		iterations = int(2*time.Second/(one+1)) + 1
		if iterations < 5 {
			iterations = 5
		}
		if iterations > 10000 {
			iterations = 10000
		}
	}
	ms := make([]float64, iterations)
	for i := range ms {
		runtime.GC()
		d, err := parse(data)
		if err != nil {
			fail(err)
		}
		ms[i] = float64(d.Nanoseconds()) / 1e6
	}
	sort.Float64s(ms)
	n := len(ms)
	med := ms[n/2]
	if n%2 == 0 {
		med = (ms[n/2-1] + ms[n/2]) / 2
	}
	fmt.Printf("format=toml bytes=%d parse_ms=%.3f mb_per_s=%.3f\n", len(data), med,
		float64(len(data))/1e6/(med/1e3))
}
