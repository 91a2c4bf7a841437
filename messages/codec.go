package messages

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxMessageBytes bounds any single decoded message; larger input is refused
// before decoding.
const MaxMessageBytes = 64 << 20

// Registry maps wire type names to message types. It is a value, not a global:
// each codec owns one (Default returns a fresh registry of every message).
type Registry struct {
	byName map[string]func() any
	names  map[string]string // Go type name → wire name
}

// Default returns a registry with every shoal message.
func Default() *Registry {
	r := &Registry{byName: map[string]func() any{}, names: map[string]string{}}
	add := func(name string, mk func() any) {
		r.byName[name] = mk
		r.names[fmt.Sprintf("%T", mk())] = name
	}
	add("shoal.Submit", func() any { return &Submit{} })
	add("shoal.SubmitAck", func() any { return &SubmitAck{} })
	add("shoal.Register", func() any { return &Register{} })
	add("shoal.Registered", func() any { return &Registered{} })
	add("shoal.Pull", func() any { return &Pull{} })
	add("shoal.Grant", func() any { return &Grant{} })
	add("shoal.Heartbeat", func() any { return &Heartbeat{} })
	add("shoal.Wait", func() any { return &Wait{} })
	add("shoal.Outcomes", func() any { return &Outcomes{} })
	add("shoal.Cancel", func() any { return &Cancel{} })
	add("shoal.StatusRequest", func() any { return &StatusRequest{} })
	add("shoal.Status", func() any { return &Status{} })
	add("shoal.Error", func() any { return &Error{} })
	add("shoal.NodeLoad", func() any { return &NodeLoad{} })
	add("shoal.Drain", func() any { return &Drain{} })
	add("shoal.DrainAck", func() any { return &DrainAck{} })
	add("shoal.Pause", func() any { return &Pause{} })
	add("shoal.PauseAck", func() any { return &PauseAck{} })
	addFlows(add)
	add("shoal.ServersRequest", func() any { return &ServersRequest{} })
	add("shoal.Servers", func() any { return &Servers{} })
	return r
}

// Name returns the wire name of a registered message (a pointer), or "" if
// the type is not registered.
func (r *Registry) Name(msg any) string { return r.names[fmt.Sprintf("%T", msg)] }

// Encode marshals a registered message and returns its wire name and bytes.
func (r *Registry) Encode(msg any) (string, []byte, error) {
	name := r.Name(msg)
	if name == "" {
		return "", nil, fmt.Errorf("messages: %T is not a registered message", msg)
	}
	if b, ok := appendFast(msg); ok { // the messages that carry work in bulk: fastcodec.go
		return name, b, nil
	}
	b, err := marshal(msg)
	if err != nil {
		return "", nil, fmt.Errorf("messages: encode %s: %w", name, err)
	}
	return name, b, nil
}

// Decode unmarshals bytes of the named message. Untrusted input: unknown
// names, oversized input and malformed bytes return a *Error with CodeInvalid.
func (r *Registry) Decode(name string, b []byte) (any, error) {
	mk, ok := r.byName[name]
	if !ok {
		return nil, Errorf(CodeInvalid, "unknown message type %q", name)
	}
	if len(b) > MaxMessageBytes {
		return nil, Errorf(CodeInvalid, "%s: %d bytes exceeds the %d-byte message limit", name, len(b), MaxMessageBytes)
	}
	if err := CheckShape(b); err != nil {
		return nil, Errorf(CodeInvalid, "%s: malformed msgpack: %v", name, err)
	}
	if msg, ok := decodeFast(name, b); ok { // fastcodec.go
		return msg, nil
	}
	msg := mk()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(false)
	if err := dec.Decode(msg); err != nil {
		return nil, Errorf(CodeInvalid, "%s: malformed msgpack: %v", name, err)
	}
	return msg, nil
}

// MaxNesting bounds how deeply arrays and maps may nest in a message. shoal's
// messages nest four deep; the rest is room for fields added later.
const MaxNesting = 32

// CheckShape walks msgpack bytes without decoding them and refuses input that
// msgpack/v5 must not see:
//   - a length prefix larger than the bytes left. msgpack/v5.4.1 sizes a
//     slice from its length prefix before reading any element (its alloc
//     limit test `flags&disableAllocLimitFlag != 1` is always true), so 11
//     bytes claiming 2^32 elements make it allocate tens of gigabytes and the
//     process dies with a fatal, unrecoverable out-of-memory error. Strings and
//     binaries are capped by the library at 1 MiB, still a lot for 6 bytes.
//     After this check every element holds at least one input byte, so
//     decoding allocates at most a small multiple of len(b) (the largest
//     element struct is under 100 bytes);
//   - nesting deeper than MaxNesting: msgpack/v5 skips unknown fields by
//     recursion, one stack frame per level, and a deep enough input exhausts
//     the stack, which is fatal too;
//   - a truncated value, the never-used code 0xc1, and bytes after the value.
//
// It is iterative and allocation-free.
func CheckShape(b []byte) error {
	var open [MaxNesting]uint64 // elements still to read in each enclosing container
	depth := 0
	left := uint64(1) // elements still to read at this level: one top-level value
	pos := 0
	for {
		for left == 0 {
			if depth == 0 {
				if pos != len(b) {
					return fmt.Errorf("%d bytes after the message", len(b)-pos)
				}
				return nil
			}
			depth--
			left = open[depth]
		}
		if pos >= len(b) {
			return fmt.Errorf("truncated at byte %d", pos)
		}
		c := b[pos]
		pos++
		left--

		var (
			skip  uint64 // payload bytes that follow
			elems uint64 // elements of a new array or map (a map counts keys and values)
			width int    // width of a big-endian length that follows c
			ext   bool   // an ext: its length excludes the type byte
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f:
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			elems = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				width = 1
			case 0xc5, 0xda: // bin16, str16
				width = 2
			case 0xc6, 0xdb: // bin32, str32
				width = 4
			case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32
				width, ext = 1<<(c-0xc7), true
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
				skip = 1 + 1<<(c-0xd4)
			case 0xdc, 0xdd, 0xde, 0xdf: // array16, array32, map16, map32
				if c == 0xdc || c == 0xde {
					width = 2
				} else {
					width = 4
				}
			default: // 0xc1
				return fmt.Errorf("invalid code 0x%02x at byte %d", c, pos-1)
			}
		}
		if width > 0 {
			if len(b)-pos < width {
				return fmt.Errorf("truncated length at byte %d", pos)
			}
			var n uint64
			for _, x := range b[pos : pos+width] {
				n = n<<8 | uint64(x)
			}
			pos += width
			switch {
			case c == 0xdc || c == 0xdd:
				elems = n
			case c == 0xde || c == 0xdf:
				elems = 2 * n
			case ext:
				skip = 1 + n
			default:
				skip = n
			}
		}
		rest := uint64(len(b) - pos)
		if skip > rest {
			return fmt.Errorf("value at byte %d claims %d bytes, %d left", pos, skip, rest)
		}
		pos += int(skip)
		if elems > 0 {
			if elems > rest {
				return fmt.Errorf("container at byte %d claims %d elements, %d bytes left", pos, elems, rest)
			}
			if depth == MaxNesting {
				return fmt.Errorf("nesting deeper than %d at byte %d", MaxNesting, pos)
			}
			open[depth] = left
			depth++
			left = elems
		}
	}
}
