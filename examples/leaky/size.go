package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize reads a byte count such as "2MiB", "512KiB", "1M", "1.5G" or
// "4096", optionally followed by "/s" (so that "2MiB/s" reads as a rate).
// K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB
// are powers of 1000; B or no suffix means bytes. A plain number also
// serves as a count (goroutines per second).
func parseSize(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "/s")
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: expected a number, e.g. 2MiB, 512KiB, 1M or 4096", in)
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", in, err)
	}
	unit := strings.TrimSpace(s[i:])
	var mult float64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "k", "ki", "kib":
		mult = 1 << 10
	case "m", "mi", "mib":
		mult = 1 << 20
	case "g", "gi", "gib":
		mult = 1 << 30
	case "t", "ti", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, K, KiB, KB, M, MiB, MB, G, GiB, GB)", in, unit)
	}
	v := num * mult
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", in)
	}
	return int64(v), nil
}

// sizeFlag is a flag.Value holding a byte count written with parseSize.
type sizeFlag struct {
	v   int64
	set bool
}

func (f *sizeFlag) String() string { return formatSize(f.v) }

func (f *sizeFlag) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	f.v, f.set = v, true
	return nil
}

// formatSize writes n in the largest binary unit that divides it exactly,
// so that formatSize(parseSize(x)) reads back the same value.
func formatSize(n int64) string {
	units := []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
