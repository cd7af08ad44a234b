// SPDX-License-Identifier: MIT (see LICENSE)
// Command fsnotify_min is a minimal fsnotify peer of `reactcfg-bench latency`: the
// shortest correct-looking watcher a Go programmer writes by hand. It watches the
// directory of FILE and, on any event naming FILE or "..data" (Kubernetes symlink swaps),
// re-reads FILE and prints "<time.Now().UnixNano()> <seq>", seq -1 when the content does
// not parse. fsnotify reports in-place writes per write(), not per close, so this peer
// shows what reading too early costs.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fsnotify_min FILE")
		os.Exit(2)
	}
	file := filepath.Clean(os.Args[1])
	w, err := fsnotify.NewWatcher()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsnotify_min:", err)
		os.Exit(1)
	}
	if err := w.Add(filepath.Dir(file)); err != nil {
		fmt.Fprintln(os.Stderr, "fsnotify_min:", err)
		os.Exit(1)
	}
	data := filepath.Join(filepath.Dir(file), "..data")
	fmt.Println("ready")
	for {
		select {
		case e := <-w.Events:
			name := filepath.Clean(e.Name)
			if (name != file && name != data) || e.Op&(fsnotify.Write|fsnotify.Create) == 0 {
				continue
			}
			seq := int64(-1)
			if b, err := os.ReadFile(file); err == nil {
				var doc struct {
					Seq *int64 `json:"seq"`
					Pad string `json:"pad"`
				}
				if json.Unmarshal(b, &doc) == nil && doc.Seq != nil {
					seq = *doc.Seq
				}
			}
			fmt.Printf("%d %d\n", time.Now().UnixNano(), seq)
		case err := <-w.Errors:
			fmt.Fprintln(os.Stderr, "fsnotify_min:", err)
		}
	}
}
