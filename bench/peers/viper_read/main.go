// SPDX-License-Identifier: MIT (see LICENSE)
// Command viper_read is the Viper peer of `reactcfg-bench read`: it loads FILE with
// spf13/viper and calls GetInt(KEY) in a loop on THREADS goroutines for SECONDS, then
// prints one line:
//   viper-read threads=<n> reads=<total> seconds=<s> ns_per_read=<CPU ns>
//              wall_ns_per_read=<wall ns x threads> mreads_per_s=<total>
// CPU time is the whole process's (getrusage) over the measurement: what the reads cost,
// garbage collection included.
// Viper is not safe for reads concurrent with a reload (its maps are written in place),
// so it is measured on a configuration that does not change: its best case.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/viper"
)

type slot struct {
	reads uint64
	bad   uint64
	_     [48]byte // each goroutine's counts on a cache line of their own
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: viper_read FILE SECONDS THREADS KEY")
		os.Exit(2)
	}
	secs, err1 := strconv.ParseFloat(os.Args[2], 64)
	threads, err2 := strconv.Atoi(os.Args[3])
	key := os.Args[4]
	if err1 != nil || err2 != nil || threads < 1 {
		fmt.Fprintln(os.Stderr, "viper_read: bad arguments")
		os.Exit(2)
	}
	v := viper.New()
	v.SetConfigFile(os.Args[1])
	if err := v.ReadInConfig(); err != nil {
		fmt.Fprintln(os.Stderr, "viper_read:", err)
		os.Exit(1)
	}
	want := v.GetInt(key)
	if want == 0 {
		fmt.Fprintln(os.Stderr, "viper_read: no integer at", key)
		os.Exit(1)
	}
	var stop atomic.Bool
	slots := make([]slot, threads)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < threads; i++ {
		ready.Add(1)
		done.Add(1)
		go func(s *slot) {
			defer done.Done()
			ready.Done()
			<-start
			var n, bad uint64
			for !stop.Load() {
				for j := 0; j < 256; j++ {
					if v.GetInt(key) != want {
						bad++
					}
				}
				n += 256
			}
			s.reads, s.bad = n, bad
		}(&slots[i])
	}
	ready.Wait()
	cpu0 := cpuNs()
	t0 := time.Now()
	close(start)
	time.Sleep(time.Duration(secs * float64(time.Second)))
	stop.Store(true)
	done.Wait()
	elapsed := time.Since(t0).Seconds()
	cpu := cpuNs() - cpu0
	var total, bad uint64
	for i := range slots {
		total += slots[i].reads
		bad += slots[i].bad
	}
	if bad != 0 {
		fmt.Fprintln(os.Stderr, "viper_read: wrong values read:", bad)
		os.Exit(1)
	}
	fmt.Printf("viper-read threads=%d reads=%d seconds=%.3f ns_per_read=%.2f"+
		" wall_ns_per_read=%.2f mreads_per_s=%.2f\n",
		threads, total, elapsed, float64(cpu)/float64(total),
		elapsed*1e9*float64(threads)/float64(total), float64(total)/elapsed/1e6)
}

// cpuNs is the process's user + system CPU time so far.
func cpuNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
