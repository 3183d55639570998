package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// controlHandler serves /control.
//
//	GET  /control                          the current state as JSON
//	POST /control?mode=heap&rate=1MiB/s    change it (query, form or JSON body)
//	POST /control -d '{"mode":"goroutine","rate":50,"goroutine_buf":"256KiB"}'
//
// Parameters: mode, rate, goroutine_buf, burst_size, burst_hold, burst_once,
// sawtooth_rate, max_total, paused, reset. Changing the mode without a rate
// returns the rate to the new mode's default. reset=true releases everything
// the leak modes hold.
func controlHandler(l *Leaker, rcv *Receiver) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPost:
			params, err := controlParams(r)
			if err == nil {
				err = applyControl(l, params)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Leaker   Status        `json:"leaker"`
			Reaction ReactionState `json:"reaction"`
		}{l.Status(), rcv.State()})
	}
}

// controlParams collects the parameters of a POST from the query string, a
// form body or a JSON object body, as strings.
func controlParams(r *http.Request) (map[string]string, error) {
	params := map[string]string{}
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("body: %v", err)
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				params[k] = v
			case bool:
				params[k] = strconv.FormatBool(v)
			case float64:
				params[k] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				return nil, fmt.Errorf("%s: expected a string, number or boolean", k)
			}
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, vs := range r.Form {
		params[k] = vs[len(vs)-1]
	}
	norm := map[string]string{}
	for k, v := range params {
		norm[strings.ReplaceAll(k, "-", "_")] = v
	}
	return norm, nil
}

func applyControl(l *Leaker, p map[string]string) error {
	reset := false
	err := l.Update(func(c *Config) error {
		if m, ok := p["mode"]; ok {
			if !validMode(m) {
				return fmt.Errorf("mode: unknown mode %q (one of %v)", m, modeNames)
			}
			if m != c.Mode {
				c.Rate = 0
			}
			c.Mode = m
		}
		for _, k := range sortedKeys(p) {
			v := p[k]
			var err error
			switch k {
			case "mode":
			case "rate":
				c.Rate, err = parseSize(v)
			case "goroutine_buf":
				c.GoroutineBuf, err = parseSize(v)
			case "burst_size":
				c.BurstSize, err = parseSize(v)
			case "sawtooth_rate":
				c.SawtoothRate, err = parseSize(v)
			case "max_total":
				c.MaxTotal, err = parseSize(v)
			case "burst_hold":
				c.BurstHold, err = time.ParseDuration(v)
			case "burst_once":
				c.BurstOnce, err = strconv.ParseBool(v)
			case "paused":
				c.Paused, err = strconv.ParseBool(v)
			case "reset":
				reset, err = strconv.ParseBool(v)
			default:
				err = fmt.Errorf("unknown parameter")
			}
			if err != nil {
				return fmt.Errorf("%s: %v", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if reset {
		l.Reset()
	}
	l.log("control", map[string]any{"params": p})
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// sortedKeys is used to make error messages stable.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
