// Command porcupine-bench decides the histories that sim-models' linearizable_bench
// writes (LIN_HISTORY_OUT) with Porcupine, and times it.
//
// The model is a register per key, with the semantics of
// sim_models::check::linearizable: read, write (a value, or a delete), add (an
// increment: the register must hold an integer, absent counting as 0). Operations with
// an error reply (outcome "failed") did not run, and reads without an answer saw
// nothing: both are dropped, as our checker drops them, inside the timed Partition
// function. Writes and adds without an answer ("unknown") stay open to the end of time
// (Return = MaxInt64); an unanswered add on a register that holds no integer may not
// have happened, so it leaves the register as it was.
//
// Usage: porcupine-bench [-runs 5] [-timeout 0] name=file.jsonl ...
// For each history it prints the verdict, the median and best wall time of
// porcupine.CheckOperationsTimeout over -runs runs, and (untimed) which keys are not
// linearizable when each key is checked on its own.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

type callKind uint8

const (
	callRead callKind = iota
	callWrite
	callAdd
)

type outcomeKind uint8

const (
	outRead outcomeKind = iota
	outWritten
	outAdded
	outFailed
	outUnknown
)

// value is a register's content: absent, or a string. Comparable with ==.
type value struct {
	present bool
	s       string
}

type input struct {
	key   string
	call  callKind
	value value // a write's value
	delta int64 // an add's delta
}

type output struct {
	kind  outcomeKind
	value value // a read's value
	n     int64 // an add's result
}

// line is one operation as linearizable_bench writes it.
type line struct {
	Client    int              `json:"client"`
	Key       string           `json:"key"`
	Call      string           `json:"call"`
	Arg       *json.RawMessage `json:"arg"`
	Invoked   int64            `json:"invoked"`
	Completed int64            `json:"completed"`
	Outcome   string           `json:"outcome"`
	Result    *json.RawMessage `json:"result"`
}

func optString(raw *json.RawMessage) (value, error) {
	if raw == nil || string(*raw) == "null" {
		return value{}, nil
	}
	var s string
	if err := json.Unmarshal(*raw, &s); err != nil {
		return value{}, err
	}
	return value{present: true, s: s}, nil
}

func integer(raw *json.RawMessage) (int64, error) {
	if raw == nil {
		return 0, fmt.Errorf("missing integer")
	}
	var n int64
	err := json.Unmarshal(*raw, &n)
	return n, err
}

func readHistory(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []porcupine.Operation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		in := input{key: l.Key}
		switch l.Call {
		case "read":
			in.call = callRead
		case "write":
			in.call = callWrite
			in.value, err = optString(l.Arg)
		case "add":
			in.call = callAdd
			in.delta, err = integer(l.Arg)
		default:
			err = fmt.Errorf("call %q", l.Call)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		var out output
		switch l.Outcome {
		case "read":
			out.kind = outRead
			out.value, err = optString(l.Result)
		case "written":
			out.kind = outWritten
		case "added":
			out.kind = outAdded
			out.n, err = integer(l.Result)
		case "failed":
			out.kind = outFailed
		case "unknown":
			out.kind = outUnknown
		default:
			err = fmt.Errorf("outcome %q", l.Outcome)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		ret := l.Completed
		if out.kind == outUnknown {
			ret = math.MaxInt64 // it may take effect at any time after its call
		}
		ops = append(ops, porcupine.Operation{
			ClientId: l.Client,
			Input:    in,
			Call:     l.Invoked,
			Output:   out,
			Return:   ret,
		})
	}
	return ops, sc.Err()
}

// relevant mirrors Op::relevant: failed operations and unanswered reads change nothing.
func relevant(op porcupine.Operation) bool {
	switch op.Output.(output).kind {
	case outFailed:
		return false
	case outUnknown:
		return op.Input.(input).call != callRead
	}
	return true
}

// partition groups the relevant operations by key, keys in order of first appearance,
// into one backing array (growing a slice per key cost more than the rest of it).
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	index := make(map[string]int32)
	var counts []int
	part := make([]int32, len(history))
	total := 0
	for n, op := range history {
		if !relevant(op) {
			part[n] = -1
			continue
		}
		key := op.Input.(input).key
		i, ok := index[key]
		if !ok {
			i = int32(len(counts))
			index[key] = i
			counts = append(counts, 0)
		}
		part[n] = i
		counts[i]++
		total++
	}
	all := make([]porcupine.Operation, total)
	parts := make([][]porcupine.Operation, len(counts))
	at := 0
	for i, c := range counts {
		parts[i] = all[at : at : at+c]
		at += c
	}
	for n, op := range history {
		if i := part[n]; i >= 0 {
			parts[i] = append(parts[i], op)
		}
	}
	return parts
}

// number is the register as an integer, like Rust's i64::from_str (absent is 0).
func number(v value) (int64, bool) {
	if !v.present {
		return 0, true
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	return n, err == nil
}

func checkedAdd(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

func integerValue(n int64) value {
	return value{present: true, s: strconv.FormatInt(n, 10)}
}

// step mirrors the register step of sim_models::check::linearizable.
func step(state, in, out interface{}) (bool, interface{}) {
	st := state.(value)
	i := in.(input)
	o := out.(output)
	switch i.call {
	case callRead:
		return o.kind == outRead && o.value == st, st
	case callWrite:
		return true, i.value
	case callAdd:
		if o.kind == outAdded {
			old, ok := number(st)
			if !ok {
				return false, st
			}
			n, ok := checkedAdd(old, i.delta)
			if !ok || n != o.n {
				return false, st
			}
			return true, integerValue(o.n)
		}
		if old, ok := number(st); ok {
			if n, ok := checkedAdd(old, i.delta); ok {
				return true, integerValue(n)
			}
		}
		// Not an integer: Redis would refuse it. Ours leaves an unanswered add unplaced
		// (it did not happen); here every operation is placed, so it changes nothing.
		return o.kind == outUnknown, st
	}
	return false, st
}

func hash(state interface{}) uint64 {
	v := state.(value)
	h := uint64(14695981039346656037)
	if v.present {
		h ^= 1
		h *= 1099511628211
	}
	for i := 0; i < len(v.s); i++ {
		h ^= uint64(v.s[i])
		h *= 1099511628211
	}
	return h
}

func model(partitioned bool) porcupine.Model {
	m := porcupine.Model{
		Init:  func() interface{} { return value{} },
		Step:  step,
		Equal: func(a, b interface{}) bool { return a.(value) == b.(value) },
		Hash:  hash,
	}
	if partitioned {
		m.Partition = partition
	}
	return m
}

func main() {
	runs := flag.Int("runs", 5, "timed runs per history")
	timeout := flag.Duration("timeout", 0, "per-run timeout for CheckOperationsTimeout (0: none)")
	flag.Parse()
	fmt.Printf("porcupine-bench: %s, GOMAXPROCS=%d, %d runs per history\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *runs)
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "usage: porcupine-bench name=file.jsonl ...\n")
			os.Exit(2)
		}
		ops, err := readHistory(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		m := model(true)
		var times []time.Duration
		var verdict porcupine.CheckResult
		for r := 0; r < *runs; r++ {
			runtime.GC() // the previous run's garbage is not this run's cost
			start := time.Now()
			res := porcupine.CheckOperationsTimeout(m, ops, *timeout)
			times = append(times, time.Since(start))
			if r > 0 && res != verdict {
				fmt.Fprintf(os.Stderr, "%s: verdict changed between runs: %s then %s\n", name, verdict, res)
				os.Exit(1)
			}
			verdict = res
		}
		sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
		// Untimed: which keys fail on their own (Porcupine stops at the first one).
		single := model(false)
		var bad []string
		for _, part := range partition(ops) {
			if !porcupine.CheckOperations(single, part) {
				bad = append(bad, part[0].Input.(input).key)
			}
		}
		sort.Strings(bad)
		badList := "-"
		if len(bad) > 0 {
			badList = strings.Join(bad, ",")
		}
		median, best := times[len(times)/2], times[0]
		fmt.Printf("%s: %d ops, %s in %.1f ms (median of %d; best %.1f ms); keys not linearizable: %s\n",
			name, len(ops), verdict, float64(median)/1e6, *runs, float64(best)/1e6, badList)
		fmt.Printf("RESULT %s %s %d %d %s\n", name, verdict, median.Nanoseconds(), best.Nanoseconds(), badList)
	}
}
