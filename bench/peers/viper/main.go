// SPDX-License-Identifier: MIT (see LICENSE)
// Command viper is the Viper peer of `reactcfg-bench latency`: spf13/viper watches FILE
// with WatchConfig, reloads it on its own, and on every OnConfigChange this prints
// "<time.Now().UnixNano()> <seq>" (CLOCK_REALTIME, the clock the saves are timed with).
// Protocol: `viper FILE`; prints "ready" once watching, then one line per callback.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/viper"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: viper FILE")
		os.Exit(2)
	}
	// Viper logs every reload that fails to parse (a half-written file) through the
	// standard logger; those are expected here and show up as repeated old values.
	log.SetOutput(io.Discard)

	v := viper.New()
	v.SetConfigFile(os.Args[1])
	if err := v.ReadInConfig(); err != nil {
		fmt.Fprintln(os.Stderr, "viper:", err)
		os.Exit(1)
	}
	v.OnConfigChange(func(fsnotify.Event) {
		t := time.Now().UnixNano()
		// Viper has already re-read the file (or kept the old values when it could not
		// parse it) before calling us.
		fmt.Printf("%d %d\n", t, v.GetInt("seq"))
	})
	// WatchConfig returns once its inotify watch on the directory is in place.
	v.WatchConfig()
	fmt.Println("ready")
	select {}
}
