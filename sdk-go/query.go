package gantry

// Lazy query building: the runtime under the generated types.
//
// An object (Container, Directory, ...) holds a selection: the chain of field
// selections from the root that produces it. A method that returns an object
// only extends the chain; nothing is sent. A method that takes a context
// renders the whole chain as one GraphQL document, sends it, and walks the
// response back down the chain.
//
// Object arguments are passed by ID: before sending, each object argument's
// ID is fetched (one request per object, remembered on the object), so the
// engine receives `withDirectory(path:"/src",source:"Directory:…")`. Input
// objects (BuildArg, PortForward) are written inline as object literals,
// `{name:"A",value:"B"}`, leaving out optional fields at their zero value.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// selection is one field of an immutable chain from the root. The root has
// no parent and no field.
type selection struct {
	parent *selection
	field  string
	args   []arg
	// on is the type condition of an inline fragment
	// (`node(id:) { ... on T { … } }`).
	on   string
	sess *session
}

type arg struct {
	name  string
	value any
}

// sel returns a new selection one field deeper; it sends nothing.
func (q *selection) sel(field string) *selection {
	return &selection{parent: q, field: field, sess: q.sess}
}

// arg adds a required argument. Only the generated code calls it, on a
// selection it has just created and not yet shared.
func (q *selection) arg(name string, value any) *selection {
	q.args = append(q.args, arg{name: name, value: value})
	return q
}

// optArg sets an optional argument unless value is its type's zero value
// (then the engine's default applies). A later value replaces an earlier one.
func (q *selection) optArg(name string, value any) *selection {
	if isZero(value) {
		return q
	}
	for i := range q.args {
		if q.args[i].name == name {
			q.args[i].value = value
			return q
		}
	}
	return q.arg(name, value)
}

func isZero(value any) bool {
	if value == nil {
		return true
	}
	return reflect.ValueOf(value).IsZero()
}

func (q *selection) root() *selection {
	for q.parent != nil {
		q = q.parent
	}
	return q
}

// chain lists the selections from the root's first child to q.
func (q *selection) chain() []*selection {
	var out []*selection
	for s := q; s.parent != nil; s = s.parent {
		out = append(out, s)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// document renders the chain as one GraphQL query, resolving object
// arguments to their IDs first (which may send one request per object).
func (q *selection) document(ctx context.Context) (string, error) {
	var b strings.Builder
	b.WriteString("query")
	depth := 0
	for _, s := range q.chain() {
		b.WriteString("{")
		b.WriteString(s.field)
		depth++
		if len(s.args) > 0 {
			b.WriteString("(")
			for i, a := range s.args {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(a.name)
				b.WriteString(":")
				if err := writeLiteral(ctx, &b, a.value); err != nil {
					return "", fmt.Errorf("argument %s of %s: %w", a.name, s.field, err)
				}
			}
			b.WriteString(")")
		}
		if s.on != "" {
			b.WriteString("{... on ")
			b.WriteString(s.on)
			depth++
		}
	}
	b.WriteString(strings.Repeat("}", depth))
	return b.String(), nil
}

// execute sends the chain as one query and decodes the value at its end
// into dest.
func (q *selection) execute(ctx context.Context, dest any) error {
	leaf := q.field
	document, err := q.document(ctx)
	if err != nil {
		return fmt.Errorf("gantry: %s: %w", leaf, err)
	}
	data, err := q.sess.query(ctx, document)
	if err != nil {
		return fmt.Errorf("gantry: %s: %w", leaf, err)
	}
	value := walk(data, q.chain())
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("gantry: %s: %w", leaf, err)
	}
	if err := json.Unmarshal(raw, dest); err != nil {
		return fmt.Errorf("gantry: %s: %w", leaf, &TransportError{
			Message: "the engine's response does not fit the schema", Err: err,
		})
	}
	return nil
}

// walk follows the chain's field names down the response data; a list maps
// the rest of the chain over its elements.
func walk(data any, chain []*selection) any {
	for i, s := range chain {
		switch node := data.(type) {
		case nil:
			return nil
		case []any:
			out := make([]any, len(node))
			for j, item := range node {
				out[j] = walk(item, chain[i:])
			}
			return out
		case map[string]any:
			data = node[s.field]
		default:
			return nil
		}
	}
	return data
}

// object is embedded in every generated type: the selection that produces
// it and its ID once known.
type object struct {
	q  *selection
	id *idCache
}

type idCache struct {
	mu    sync.Mutex
	value string
}

func newObject(q *selection) object {
	return object{q: q, id: &idCache{}}
}

// objectID returns the object's ID, fetching it once (concurrent callers
// share the one request).
func (o *object) objectID(ctx context.Context) (string, error) {
	o.id.mu.Lock()
	defer o.id.mu.Unlock()
	if o.id.value != "" {
		return o.id.value, nil
	}
	var id string
	if err := o.q.sel("id").execute(ctx, &id); err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("gantry: id: %w", &TransportError{Message: "the engine returned an empty ID"})
	}
	o.id.value = id
	return id, nil
}

// load addresses an object of typeName by ID, from the root.
func (o *object) load(typeName, id string) object {
	q := &selection{parent: o.q.root(), field: "node", on: typeName, sess: o.q.sess}
	q.args = []arg{{name: "id", value: id}}
	return object{q: q, id: &idCache{value: id}}
}

// identified is what an object argument must be: any generated type.
type identified interface {
	objectID(ctx context.Context) (string, error)
}

// enum is implemented by the generated enum types: they are sent bare.
type enum interface {
	enumValue() string
}

// input is implemented by the generated input object structs: each lists
// its fields under their GraphQL names, in schema order.
type input interface {
	inputFields() []inputField
}

type inputField struct {
	name  string
	value any
	// optional fields at their zero value are left out.
	optional bool
}

var errNilObject = errors.New("a nil object was passed as an argument")

// writeLiteral writes a GraphQL literal for an argument value (arguments are
// inlined; strings are JSON-escaped).
func writeLiteral(ctx context.Context, b *strings.Builder, value any) error {
	switch v := value.(type) {
	case nil:
		b.WriteString("null")
		return nil
	case enum:
		b.WriteString(v.enumValue())
		return nil
	case input:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			b.WriteString("null")
			return nil
		}
		b.WriteString("{")
		written := 0
		for _, field := range v.inputFields() {
			if field.optional && isZero(field.value) {
				continue
			}
			if written > 0 {
				b.WriteString(",")
			}
			written++
			b.WriteString(field.name)
			b.WriteString(":")
			if err := writeLiteral(ctx, b, field.value); err != nil {
				return fmt.Errorf("field %s: %w", field.name, err)
			}
		}
		b.WriteString("}")
		return nil
	case identified:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return errNilObject
		}
		id, err := v.objectID(ctx)
		if err != nil {
			return err
		}
		writeString(b, id)
		return nil
	}
	rv := reflect.ValueOf(value)
	switch rv.Kind() {
	case reflect.String:
		writeString(b, rv.String())
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(rv.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%v cannot be sent to the engine", f)
		}
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case reflect.Slice, reflect.Array:
		b.WriteString("[")
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b.WriteString(",")
			}
			if err := writeLiteral(ctx, b, rv.Index(i).Interface()); err != nil {
				return err
			}
		}
		b.WriteString("]")
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			b.WriteString("null")
			return nil
		}
		return writeLiteral(ctx, b, rv.Elem().Interface())
	default:
		return fmt.Errorf("cannot send a %T as a GraphQL argument", value)
	}
	return nil
}

func writeString(b *strings.Builder, s string) {
	encoded, _ := json.Marshal(s) // a string always encodes
	b.Write(encoded)
}
