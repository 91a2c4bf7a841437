package request

import (
	"errors"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

func spec(typ string, payload string, prio int32) messages.TaskSpec {
	return messages.TaskSpec{Type: typ, Payload: []byte(payload), Priority: prio}
}

func submit(tasks ...messages.TaskSpec) *messages.Submit {
	return &messages.Submit{Version: messages.ProtocolVersion, Tasks: tasks}
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxPayloadBytes = 16
	cfg.MaxBatch = 3
	cfg.MaxTypeLen = 8
	cfg.StandbyLimit = 10
	return cfg
}

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"MaxPayloadBytes": func(c *Config) { c.MaxPayloadBytes = 0 },
		"MaxBatch":        func(c *Config) { c.MaxBatch = 0 },
		"MaxTypeLen":      func(c *Config) { c.MaxTypeLen = -1 },
		"LowMax":          func(c *Config) { c.LowMax = c.HighMin },
		"HighMin":         func(c *Config) { c.HighMin = messages.MaxPriority + 1 },
		"MaxAttempts":     func(c *Config) { c.DefaultMaxAttempts = c.MaxAttempts + 1 },
		"StandbyLimit":    func(c *Config) { c.StandbyLimit = 0 },
	}
	for name, mut := range bad {
		cfg := DefaultConfig()
		mut(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted a bad config", name)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the field", name, err)
		}
	}
}

func TestAcceptValidation(t *testing.T) {
	ok := spec("resize", "p", 50)
	withReq := func(k, v string) messages.TaskSpec {
		s := ok
		s.Requirements = map[string]string{k: v}
		return s
	}
	withAttempts := func(n int32) messages.TaskSpec {
		s := ok
		s.MaxAttempts = n
		return s
	}
	cases := []struct {
		name    string
		sub     *messages.Submit
		standby int64
		code    messages.ErrorCode
		index   int32
	}{
		{"bad version", &messages.Submit{Version: messages.ProtocolVersion + 1, Tasks: []messages.TaskSpec{ok}}, 0, messages.CodeVersion, -1},
		{"empty batch", submit(), 0, messages.CodeInvalid, -1},
		{"batch too large", submit(ok, ok, ok, ok), 0, messages.CodeInvalid, -1},
		{"overloaded", submit(ok, ok), 9, messages.CodeOverloaded, -1},
		{"empty type", submit(ok, spec("", "p", 50)), 0, messages.CodeInvalid, 1},
		{"long type", submit(spec("123456789", "p", 50)), 0, messages.CodeInvalid, 0},
		{"bad utf8 type", submit(ok, ok, spec("a\xffb", "p", 50)), 0, messages.CodeInvalid, 2},
		// "a\x00b" + "c" would digest like "a" + "b\x00c": a different task.
		{"NUL in type", submit(spec("a\x00b", "c", 50)), 0, messages.CodeInvalid, 0},
		{"payload too large", submit(spec("t", strings.Repeat("x", 17), 50)), 0, messages.CodePayloadTooLarge, 0},
		{"priority below range", submit(spec("t", "", messages.MinPriority-1)), 0, messages.CodeBadPriority, 0},
		{"priority above range", submit(ok, spec("t", "", messages.MaxPriority+1)), 0, messages.CodeBadPriority, 1},
		{"negative max attempts", submit(withAttempts(-1)), 0, messages.CodeInvalid, 0},
		{"max attempts above cap", submit(withAttempts(101)), 0, messages.CodeInvalid, 0},
		{"bad version constraint", submit(withReq("cuda", ">= banana")), 0, messages.CodeBadRequirement, 0},
		{"empty requirement key", submit(withReq("", "=x")), 0, messages.CodeBadRequirement, 0},
		{"long requirement key", submit(withReq(strings.Repeat("k", 65), "=x")), 0, messages.CodeBadRequirement, 0},
		{"bare equals", submit(withReq("gpu", "=")), 0, messages.CodeBadRequirement, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New(smallConfig(), 41)
			m.SetStandby(c.standby)
			recs, err := m.Accept(t0, c.sub)
			if err == nil {
				t.Fatalf("accepted %d records, want code %v", len(recs), c.code)
			}
			if recs != nil {
				t.Errorf("records returned with an error: %v", recs)
			}
			if err.Code != c.code {
				t.Errorf("code = %v, want %v (%v)", err.Code, c.code, err)
			}
			if err.Index != c.index {
				t.Errorf("index = %d, want %d (%v)", err.Index, c.index, err)
			}
			if !errors.Is(err, &messages.Error{Code: c.code}) {
				t.Errorf("errors.Is does not match its own code")
			}
			// A refused batch consumes no id.
			recs, err = m.Accept(t0, submit(ok))
			if err != nil {
				if c.code == messages.CodeOverloaded {
					return // still overloaded: nothing to check
				}
				t.Fatalf("valid submit after a refused one: %v", err)
			}
			if recs[0].ID != 42 {
				t.Errorf("next id = %d after a refused batch, want 42", recs[0].ID)
			}
		})
	}
}

func TestAcceptValidRequirements(t *testing.T) {
	m := New(DefaultConfig(), 0)
	reqs := map[string]string{
		"gpu":   "=a100",
		"cuda":  ">= 15.0, < 16",
		"go":    "~> 1.26",
		"os":    "= 1.0", // "= " is a version constraint, not a label
		"exact": "1.2.3",
	}
	s := spec("t", "", 50)
	s.Requirements = reqs
	recs, err := m.Accept(t0, submit(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs[0].Requirements) != len(reqs) {
		t.Errorf("requirements = %v", recs[0].Requirements)
	}
}

func TestParseRequirement(t *testing.T) {
	good := []string{"=linux", "=a", ">= 15.0, < 16", "1.0", "= 1.0", "!= 2", "~> 3.1"}
	for _, v := range good {
		if err := task.ParseRequirement("k", v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	bad := []string{"", "=", "==linux", "= linux", ">= x", "linux"}
	for _, v := range bad {
		if err := task.ParseRequirement("k", v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestAcceptNumbersConsecutively(t *testing.T) {
	m := New(DefaultConfig(), 1000)
	var want uint64 = 1001
	for batch := 1; batch <= 4; batch++ {
		tasks := make([]messages.TaskSpec, batch)
		for i := range tasks {
			tasks[i] = spec("t", "p", 50)
		}
		recs, err := m.Accept(t0.Add(time.Duration(batch)), submit(tasks...))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID != want {
				t.Fatalf("id = %d, want %d", r.ID, want)
			}
			if r.SubmittedAt != t0.Add(time.Duration(batch)).UnixNano() {
				t.Errorf("SubmittedAt = %d", r.SubmittedAt)
			}
			want++
		}
	}
	// A fresh store starts at 1.
	recs, err := New(DefaultConfig(), 0).Accept(t0, submit(spec("t", "", 1)))
	if err != nil || recs[0].ID != 1 {
		t.Fatalf("first id of an empty store = %v, %v", recs, err)
	}
}

func TestAcceptFillsRecord(t *testing.T) {
	m := New(DefaultConfig(), 0)
	s := spec("resize", `{"a":1}`, 80)
	s.Requirements = map[string]string{"gpu": "=a100"}
	s.MaxAttempts = 7
	recs, err := m.Accept(t0, submit(s, spec("noop", "", 10)))
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if r.Type != "resize" || string(r.Payload) != `{"a":1}` || r.Priority != 80 || r.Class != messages.ClassHigh ||
		r.MaxAttempts != 7 || r.Requirements["gpu"] != "=a100" || r.Attempts != 0 {
		t.Errorf("record = %+v", r)
	}
	if r.Digest != m.Digest("resize", []byte(`{"a":1}`)) {
		t.Errorf("digest not the machine's Digest")
	}
	if recs[1].MaxAttempts != DefaultConfig().DefaultMaxAttempts {
		t.Errorf("MaxAttempts 0 became %d, want the default", recs[1].MaxAttempts)
	}
}

func TestClassOf(t *testing.T) {
	cfg := DefaultConfig()
	cases := []struct {
		prio int32
		want messages.Class
	}{
		{0, messages.ClassLow}, {29, messages.ClassLow}, {30, messages.ClassNormal}, {50, messages.ClassNormal},
		{69, messages.ClassNormal}, {70, messages.ClassHigh}, {100, messages.ClassHigh},
	}
	for _, c := range cases {
		if got := cfg.ClassOf(c.prio); got != c.want {
			t.Errorf("ClassOf(%d) = %v, want %v", c.prio, got, c.want)
		}
	}
	// Accept uses the same mapping.
	m := New(cfg, 0)
	for _, c := range cases {
		recs, err := m.Accept(t0, submit(spec("t", "", c.prio)))
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Class != c.want {
			t.Errorf("Accept priority %d: class %v, want %v", c.prio, recs[0].Class, c.want)
		}
	}
}

func TestStandbyLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StandbyLimit = 5
	m := New(cfg, 0)
	m.SetStandby(3)
	if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1))); err != nil {
		t.Fatalf("3 + 2 <= 5 refused: %v", err)
	}
	m.SetStandby(4)
	_, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1)))
	if !errors.Is(err, messages.ErrOverloaded) {
		t.Fatalf("4 + 2 > 5: err = %v, want overloaded", err)
	}
	m.SetStandby(0)
	if _, err := m.Accept(t0, submit(spec("t", "", 1))); err != nil {
		t.Fatalf("after the pump drained: %v", err)
	}
}

// TestFastPathDoesNotExhaustStandbyLimit pins admission control to the
// pump's standby count plus the tasks not yet durable. Once tasks are
// durable (Committed) and took the fast path they count against nothing, so
// intake never refuses all work after StandbyLimit tasks were ever accepted.
func TestFastPathDoesNotExhaustStandbyLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StandbyLimit = 10
	m := New(cfg, 0)
	m.SetStandby(0)
	for i := range 100 {
		if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1))); err != nil {
			t.Fatalf("submit %d with an empty standby: %v", i, err)
		}
		m.Committed(2)
	}
}

// TestMaxInflight: MaxInflight bounds the tasks accepted but not durable.
func TestMaxInflight(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StandbyLimit, cfg.MaxInflight = 10, 4
	m := New(cfg, 0)
	m.SetStandby(5)
	if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1), spec("t", "", 1))); err != nil {
		t.Fatal(err)
	}
	m.SetStandby(8) // the shell counts the 3 unclassified tasks in
	if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1), spec("t", "", 1))); !errors.Is(err, messages.ErrOverloaded) {
		t.Fatalf("8 waiting + 3 > 10: %v", err)
	}
	m.SetStandby(0)
	if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1))); !errors.Is(err, messages.ErrOverloaded) {
		t.Fatalf("3 in flight + 2 > MaxInflight 4: %v", err)
	}
	m.Committed(3)
	if m.Inflight() != 0 {
		t.Fatalf("inflight %d after commit", m.Inflight())
	}
	if _, err := m.Accept(t0, submit(spec("t", "", 1), spec("t", "", 1))); err != nil {
		t.Fatal(err)
	}
}

func TestDigest(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DigestFields = map[string][]string{"img": {"url", "size"}}
	m := New(cfg, 0)
	d := func(typ, payload string) task.Digest { return m.Digest(typ, []byte(payload)) }

	equal := []struct{ name, t1, p1, t2, p2 string }{
		{"same type and payload", "a", "xyz", "a", "xyz"},
		{"other fields ignored", "img", `{"url":"u","size":3,"trace":"1"}`, "img", `{"size":3,"url":"u","trace":"2"}`},
		{"whitespace ignored", "img", `{"url":"u","size":[1,2]}`, "img", "{ \"size\" : [ 1 ,\n 2 ] ,\t\"url\":\"u\" }"},
		{"missing fields alike", "img", `{"other":1}`, "img", `{"other":2}`},
		{"nil and empty payload", "a", "", "a", ""},
	}
	for _, c := range equal {
		if d(c.t1, c.p1) != d(c.t2, c.p2) {
			t.Errorf("%s: digests differ", c.name)
		}
	}
	differ := []struct{ name, t1, p1, t2, p2 string }{
		{"payload", "a", "xyz", "a", "xyw"},
		{"type", "a", "xyz", "b", "xyz"},
		{"type boundary", "ab", "c", "a", "bc"},
		{"digest field value", "img", `{"url":"u","size":3}`, "img", `{"url":"u","size":4}`},
		{"field missing vs null", "img", `{"url":"u"}`, "img", `{"url":"u","size":null}`},
		{"fields are not swapped", "img", `{"url":"1","size":"2"}`, "img", `{"url":"2","size":"1"}`},
		// A type without DigestFields is digested whole, formatting included.
		{"whole payload keeps formatting", "a", `{"x":1}`, "a", `{ "x": 1 }`},
		{"whole payload keeps other fields", "a", `{"x":1,"y":1}`, "a", `{"x":1,"y":2}`},
		{"same payload, types with and without fields", "img", `{"url":"u"}`, "other", `{"url":"u"}`},
	}
	for _, c := range differ {
		if d(c.t1, c.p1) == d(c.t2, c.p2) {
			t.Errorf("%s: digests equal", c.name)
		}
	}
	// A payload that is not a JSON object, of a type with digest fields, is
	// digested whole: every byte counts.
	for _, p := range []string{"not json", `[1,2]`, `"str"`, `{"url":`} {
		if d("img", p) == d("img", p+"x") {
			t.Errorf("%q: an extra byte did not change a whole-payload digest", p)
		}
	}
	if d("img", `[1,2]`) == d("img", `[1, 2]`) {
		t.Errorf("a JSON array is digested by fields, want whole")
	}
}

// TestDigestProperty: equal inputs always digest equal, and the field
// digest ignores any field not listed, over random values.
func TestDigestProperty(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DigestFields = map[string][]string{"k": {"id"}}
	m := New(cfg, 0)
	for i := range 200 {
		a := []byte(`{"id":` + strconv.Itoa(i) + `,"noise":` + strconv.Itoa(i*7) + `}`)
		b := []byte(`{"noise":"x` + strconv.Itoa(i) + `", "id" : ` + strconv.Itoa(i) + `}`)
		if m.Digest("k", a) != m.Digest("k", b) {
			t.Fatalf("%s and %s differ", a, b)
		}
		c := []byte(`{"id":` + strconv.Itoa(i+1) + `}`)
		if m.Digest("k", a) == m.Digest("k", c) {
			t.Fatalf("%s and %s equal", a, c)
		}
	}
}

func TestAcceptSizeAndPin(t *testing.T) {
	m := New(DefaultConfig(), 0)
	s := spec("t", "", 50)
	s.Requirements = map[string]string{"os": "=linux"}
	s.Size, s.Pin = 2.5, "exec-1"
	recs, err := m.Accept(t0, submit(s))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"os": "=linux", messages.ReqSize: "=2.5", messages.ReqPin: "=exec-1"}
	if !maps.Equal(recs[0].Requirements, want) {
		t.Fatalf("requirements = %v, want %v", recs[0].Requirements, want)
	}
	if recs[0].Size != 2.5 || recs[0].Pin != "exec-1" {
		t.Fatalf("size %v, pin %q; want the typed fields set at intake", recs[0].Size, recs[0].Pin)
	}
	if len(s.Requirements) != 1 {
		t.Fatal("the caller's requirement map was modified")
	}
	// A record re-submitted from the store keeps its size key.
	again := spec("t", "", 50)
	again.Requirements = recs[0].Requirements
	back, err := m.Accept(t0, submit(again))
	if err != nil {
		t.Fatal(err)
	}
	if back[0].Size != 2.5 || back[0].Pin != "exec-1" {
		t.Fatalf("re-submitted: size %v, pin %q; want them lifted from the reserved keys", back[0].Size, back[0].Pin)
	}
	for _, bad := range []messages.TaskSpec{
		{Type: "t", Priority: 50, Size: -1},
		{Type: "t", Priority: 50, Size: math.Inf(1)},
		{Type: "t", Priority: 50, Requirements: map[string]string{messages.ReqSize: "=big"}},
		{Type: "t", Priority: 50, Requirements: map[string]string{messages.ReqPin: ">= 1.0"}},
	} {
		if _, err := m.Accept(t0, submit(bad)); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestAcceptTimeouts: a task's own timeout wins, else its type's default,
// else the node's default; a negative one is refused.
func TestAcceptTimeouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Timeouts = map[string]time.Duration{"slow": 2 * time.Second}
	cfg.DefaultTimeout = 500 * time.Millisecond
	m := New(cfg, 0)
	own := spec("slow", "a", 50)
	own.TimeoutMillis = 100
	recs, err := m.Accept(t0, submit(own, spec("slow", "b", 50), spec("fast", "c", 50)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{100, 2000, 500} {
		if recs[i].TimeoutMillis != want {
			t.Errorf("task %d: timeout %d ms, want %d", i, recs[i].TimeoutMillis, want)
		}
	}
	none := New(DefaultConfig(), 0)
	if recs, err := none.Accept(t0, submit(spec("x", "d", 50))); err != nil || recs[0].TimeoutMillis != 0 {
		t.Errorf("no timeout configured: %+v, %v", recs, err)
	}
	bad := spec("x", "e", 50)
	bad.TimeoutMillis = -1
	if _, err := none.Accept(t0, submit(bad)); err == nil || err.Code != messages.CodeInvalid {
		t.Errorf("negative timeout: %v, want CodeInvalid", err)
	}
	cfg.Timeouts["slow"] = 0
	if cfg.Validate() == nil {
		t.Error("a zero per-type timeout validated")
	}
}
