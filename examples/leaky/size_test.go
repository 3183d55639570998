package main

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"4096": 4096, "2MiB": 2 << 20, "512KiB": 512 << 10, "1M": 1 << 20, "1m": 1 << 20,
		"1.5G": 3 << 29, "1MB": 1000000, "10KB": 10000, "2MiB/s": 2 << 20, "20/s": 20,
		" 3 KiB ": 3 << 10, "7B": 7, "0": 0,
	}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1XB", "1e3", "9999999T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, n := range []int64{0, 1, 1000, 1 << 10, 3 << 20, 5 << 30} {
		if got, _ := parseSize(formatSize(n)); got != n {
			t.Errorf("formatSize(%d) = %q reads back as %d", n, formatSize(n), got)
		}
	}
}
