// Command gantry-go-module is the Go module runtime of `gantry call` (see
// gantry's docs/modules.md). It uses only the standard library: the gantry
// binary embeds this file and builds it once.
//
//	gantry-go-module describe DIR OBJECT        prints the functions as JSON
//	gantry-go-module generate DIR OBJECT OUT.go  writes the dispatcher
//
// A Go module is a `package main` without a main function whose struct
// OBJECT has exported methods: the functions. Their parameters may be
// context.Context (first), string, int, int64, float64, bool, slices of
// those, and *Directory, *File, *Secret, *Container or *CacheVolume from
// dagger.io/dagger or gantry's sdk-go. Results are one of those (or none)
// optionally followed by error. A parameter's preceding comment may say
// `+optional` or `+default=VALUE` (VALUE in JSON), as Dagger's Go SDK reads.
//
// Listing reads the source with go/parser and needs no build. The generated
// dispatcher joins the package (gantry adds it with `go build -overlay`, so
// the module's directory is not written) and provides main: it reads
// {"function", "args"} on stdin, loads object arguments by ID into a client
// of the package they come from, calls the method and writes
// {"type", "value"|"id"} to the result file.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	daggerPath = "dagger.io/dagger"
	gantryPath = "github.com/gantry-dev/gantry/sdk-go"
)

var objects = map[string]bool{"Directory": true, "File": true, "Secret": true, "Container": true, "CacheVolume": true}

var scalars = map[string]string{"string": "String", "int": "Int", "int64": "Int", "float64": "Float", "bool": "Boolean"}

// goType is a parameter or result type as the dispatcher needs it.
type goType struct {
	Name    string // the description's type: String, [String], Directory, ...
	Package string // for objects: daggerPath or gantryPath
	Object  string // for objects: Directory, ...
	Expr    string // the Go type as written in the dispatcher
}

type param struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Optional    bool   `json:"optional"`
	Default     any    `json:"default"`
	Description string `json:"description"`
	goType      goType
	defaultJSON string
}

type function struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Args        []param `json:"args"`
	Returns     string  `json:"returns"`
	context     bool
	result      *goType
	err         bool
}

type description struct {
	Object      string     `json:"object"`
	Description string     `json:"description"`
	Functions   []function `json:"functions"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 3 && args[0] == "describe":
		desc, _, err := read(args[1], args[2])
		if err != nil {
			return err
		}
		out, err := json.Marshal(desc)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	case len(args) == 4 && args[0] == "generate":
		desc, hasMain, err := read(args[1], args[2])
		if err != nil {
			return err
		}
		if hasMain {
			return fmt.Errorf("%s: package main already has a main function: a gantry Go module is a package main without one (gantry generates it)", args[1])
		}
		code, err := generate(desc)
		if err != nil {
			return err
		}
		return os.WriteFile(args[3], code, 0o644)
	default:
		return fmt.Errorf("usage: gantry-go-module describe DIR OBJECT | generate DIR OBJECT OUT.go")
	}
}

// read parses the package in dir and describes OBJECT's exported methods.
func read(dir, object string) (*description, bool, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, false, err
	}
	sort.Strings(paths)
	fset := token.NewFileSet()
	desc := &description{Object: object}
	found := false
	hasMain := false
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, false, err
		}
		if file.Name.Name != "main" {
			return nil, false, fmt.Errorf("%s: package %s: a gantry Go module is package main", path, file.Name.Name)
		}
		imports := map[string]string{}
		for _, spec := range file.Imports {
			importPath := strings.Trim(spec.Path.Value, `"`)
			name := importPath[strings.LastIndex(importPath, "/")+1:]
			if importPath == gantryPath {
				name = "gantry"
			}
			if spec.Name != nil {
				name = spec.Name.Name
			}
			imports[name] = importPath
		}
		for _, decl := range file.Decls {
			switch decl := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok || ts.Name.Name != object {
						continue
					}
					if _, ok := ts.Type.(*ast.StructType); !ok {
						return nil, false, fmt.Errorf("%s: %s is not a struct", path, object)
					}
					found = true
					doc := ts.Doc
					if doc == nil {
						doc = decl.Doc
					}
					desc.Description = strings.TrimSpace(doc.Text())
				}
			case *ast.FuncDecl:
				if decl.Recv == nil {
					if decl.Name.Name == "main" {
						hasMain = true
					}
					continue
				}
				if !decl.Name.IsExported() || receiver(decl.Recv) != object {
					continue
				}
				fn, err := describeFunc(file, decl, imports)
				if err != nil {
					return nil, false, fmt.Errorf("%s: %s.%s: %w", fset.Position(decl.Pos()), object, decl.Name.Name, err)
				}
				desc.Functions = append(desc.Functions, *fn)
			}
		}
	}
	if !found {
		return nil, false, fmt.Errorf("%s: no type %s struct (the module's main object)", dir, object)
	}
	return desc, hasMain, nil
}

func receiver(list *ast.FieldList) string {
	if len(list.List) != 1 {
		return ""
	}
	expr := list.List[0].Type
	if star, ok := expr.(*ast.StarExpr); ok {
		expr = star.X
	}
	if ident, ok := expr.(*ast.Ident); ok {
		return ident.Name
	}
	return ""
}

func typeOf(expr ast.Expr, imports map[string]string) (goType, error) {
	switch t := expr.(type) {
	case *ast.Ident:
		if name, ok := scalars[t.Name]; ok {
			return goType{Name: name, Expr: t.Name}, nil
		}
	case *ast.ArrayType:
		if t.Len == nil {
			inner, err := typeOf(t.Elt, imports)
			if err != nil {
				return goType{}, err
			}
			if inner.Object != "" {
				return goType{}, fmt.Errorf("lists of %s are not supported", inner.Object)
			}
			return goType{Name: "[" + inner.Name + "]", Expr: "[]" + inner.Expr}, nil
		}
	case *ast.StarExpr:
		if sel, ok := t.X.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok {
				path := imports[pkg.Name]
				if (path == daggerPath || path == gantryPath) && objects[sel.Sel.Name] {
					alias := "gantrydagger"
					if path == gantryPath {
						alias = "gantrysdk"
					}
					return goType{Name: sel.Sel.Name, Package: path, Object: sel.Sel.Name, Expr: "*" + alias + "." + sel.Sel.Name}, nil
				}
			}
		}
	}
	var buf bytes.Buffer
	_ = format.Node(&buf, token.NewFileSet(), expr)
	return goType{}, fmt.Errorf("unsupported type %s: use string, int, float64, bool, slices of them, or *Directory, *File, *Secret, *Container, *CacheVolume from %s or %s", buf.String(), daggerPath, gantryPath)
}

func isContext(expr ast.Expr, imports map[string]string) bool {
	sel, ok := expr.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && imports[pkg.Name] == "context" && sel.Sel.Name == "Context"
}

// pragmas reads the comments between `from` and `to`: `+optional`,
// `+default=VALUE` and the rest as the description.
func pragmas(file *ast.File, from, to token.Pos) (optional bool, def string, doc string) {
	var lines []string
	for _, group := range file.Comments {
		if group.Pos() < from || group.End() > to {
			continue
		}
		for _, line := range strings.Split(group.Text(), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "+optional":
				optional = true
			case strings.HasPrefix(line, "+default="):
				def = strings.TrimPrefix(line, "+default=")
				optional = true
			case line != "":
				lines = append(lines, line)
			}
		}
	}
	return optional, def, strings.Join(lines, " ")
}

func describeFunc(file *ast.File, decl *ast.FuncDecl, imports map[string]string) (*function, error) {
	fn := &function{Name: decl.Name.Name, Description: strings.TrimSpace(decl.Doc.Text()), Args: []param{}, Returns: "Void"}
	prev := decl.Type.Params.Opening
	for i, field := range decl.Type.Params.List {
		if i == 0 && isContext(field.Type, imports) {
			fn.context = true
			prev = field.End()
			continue
		}
		t, err := typeOf(field.Type, imports)
		if err != nil {
			return nil, err
		}
		optional, def, doc := pragmas(file, prev, field.Pos())
		prev = field.End()
		var value any
		if def != "" {
			if err := json.Unmarshal([]byte(def), &value); err != nil {
				// An unquoted string default.
				value = def
				quoted, _ := json.Marshal(def)
				def = string(quoted)
			}
		}
		if len(field.Names) == 0 {
			return nil, fmt.Errorf("parameters need names (they become flags)")
		}
		for _, name := range field.Names {
			fn.Args = append(fn.Args, param{Name: name.Name, Type: t.Name, Optional: optional, Default: value, Description: doc, goType: t, defaultJSON: def})
		}
	}
	if decl.Type.Results != nil {
		results := decl.Type.Results.List
		var kinds []ast.Expr
		for _, field := range results {
			n := len(field.Names)
			if n == 0 {
				n = 1
			}
			for j := 0; j < n; j++ {
				kinds = append(kinds, field.Type)
			}
		}
		if len(kinds) > 0 {
			if ident, ok := kinds[len(kinds)-1].(*ast.Ident); ok && ident.Name == "error" {
				fn.err = true
				kinds = kinds[:len(kinds)-1]
			}
		}
		switch len(kinds) {
		case 0:
		case 1:
			t, err := typeOf(kinds[0], imports)
			if err != nil {
				return nil, fmt.Errorf("result: %w", err)
			}
			fn.result = &t
			fn.Returns = t.Name
		default:
			return nil, fmt.Errorf("return one value, optionally followed by error")
		}
	}
	return fn, nil
}

// generate writes the dispatcher for desc.
func generate(desc *description) ([]byte, error) {
	uses := map[string]bool{}
	for _, fn := range desc.Functions {
		for _, arg := range fn.Args {
			if arg.goType.Package != "" {
				uses[arg.goType.Package] = true
			}
		}
	}
	var b strings.Builder
	b.WriteString("// Code generated by gantry-go-module (gantry call's dispatcher). DO NOT EDIT.\n\npackage main\n\nimport (\n")
	b.WriteString("\tgantrycontext \"context\"\n\tgantryjson \"encoding/json\"\n\tgantryerrors \"errors\"\n\tgantryfmt \"fmt\"\n\tgantryio \"io\"\n\tgantryos \"os\"\n\tgantryreflect \"reflect\"\n\tgantrydebug \"runtime/debug\"\n\tgantrystrings \"strings\"\n")
	if uses[daggerPath] {
		b.WriteString("\tgantrydagger \"dagger.io/dagger\"\n")
	}
	if uses[gantryPath] {
		b.WriteString("\tgantrysdk \"github.com/gantry-dev/gantry/sdk-go\"\n")
	}
	b.WriteString(")\n\n")
	b.WriteString(dispatcherCommon)
	if uses[daggerPath] {
		b.WriteString(`
var gantryDaggerClient *gantrydagger.Client

func gantryDagger(ctx gantrycontext.Context) *gantrydagger.Client {
	if gantryDaggerClient == nil {
		client, err := gantrydagger.Connect(ctx)
		if err != nil {
			panic(gantryfmt.Sprintf("connecting Dagger's Go SDK to the session: %v", err))
		}
		gantryDaggerClient = client
	}
	return gantryDaggerClient
}
`)
	}
	if uses[gantryPath] {
		b.WriteString(`
var gantrySDKClient *gantrysdk.Client

func gantrySDK(ctx gantrycontext.Context) *gantrysdk.Client {
	if gantrySDKClient == nil {
		client, err := gantrysdk.Connect(ctx)
		if err != nil {
			panic(gantryfmt.Sprintf("connecting gantry's Go SDK to the session: %v", err))
		}
		gantrySDKClient = client
	}
	return gantrySDKClient
}
`)
	}
	b.WriteString("\nfunc gantryCall(ctx gantrycontext.Context, name string, args map[string]gantryjson.RawMessage) (map[string]any, error) {\n\tswitch name {\n")
	for _, fn := range desc.Functions {
		fmt.Fprintf(&b, "\tcase %q:\n", fn.Name)
		var call []string
		if fn.context {
			call = append(call, "ctx")
		}
		for i, arg := range fn.Args {
			v := fmt.Sprintf("a%d", i)
			call = append(call, v)
			fmt.Fprintf(&b, "\t\tvar %s %s\n", v, arg.goType.Expr)
			if arg.defaultJSON != "" && arg.goType.Object == "" {
				fmt.Fprintf(&b, "\t\tif err := gantryjson.Unmarshal([]byte(%q), &%s); err != nil {\n\t\t\treturn nil, gantryfmt.Errorf(\"default of %s: %%w\", err)\n\t\t}\n", arg.defaultJSON, v, arg.Name)
			}
			fmt.Fprintf(&b, "\t\tif raw, ok := args[%q]; ok {\n", arg.Name)
			if arg.goType.Object != "" {
				b.WriteString("\t\t\tvar id string\n\t\t\tif err := gantryjson.Unmarshal(raw, &id); err != nil {\n\t\t\t\treturn nil, err\n\t\t\t}\n")
				if arg.goType.Package == daggerPath {
					fmt.Fprintf(&b, "\t\t\t%s = gantryDagger(ctx).Load%sFromID(gantrydagger.%sID(id))\n", v, arg.goType.Object, arg.goType.Object)
				} else {
					fmt.Fprintf(&b, "\t\t\t%s = gantrySDK(ctx).Load%sFromID(gantrysdk.%sID(id))\n", v, arg.goType.Object, arg.goType.Object)
				}
			} else {
				fmt.Fprintf(&b, "\t\t\tif err := gantryjson.Unmarshal(raw, &%s); err != nil {\n\t\t\t\treturn nil, gantryfmt.Errorf(\"argument %s: %%w\", err)\n\t\t\t}\n", v, arg.Name)
			}
			b.WriteString("\t\t}\n")
		}
		callExpr := fmt.Sprintf("(&%s{}).%s(%s)", desc.Object, fn.Name, strings.Join(call, ", "))
		switch {
		case fn.result != nil && fn.err:
			fmt.Fprintf(&b, "\t\tr, err := %s\n\t\tif err != nil {\n\t\t\treturn nil, err\n\t\t}\n", callExpr)
		case fn.result != nil:
			fmt.Fprintf(&b, "\t\tr := %s\n", callExpr)
		case fn.err:
			fmt.Fprintf(&b, "\t\tif err := %s; err != nil {\n\t\t\treturn nil, err\n\t\t}\n\t\treturn map[string]any{\"type\": \"Void\"}, nil\n", callExpr)
			continue
		default:
			fmt.Fprintf(&b, "\t\t%s\n\t\treturn map[string]any{\"type\": \"Void\"}, nil\n", callExpr)
			continue
		}
		if fn.result.Object != "" {
			fmt.Fprintf(&b, "\t\tid, err := r.ID(ctx)\n\t\tif err != nil {\n\t\t\treturn nil, err\n\t\t}\n\t\treturn map[string]any{\"type\": %q, \"id\": gantryfmt.Sprint(id)}, nil\n", fn.result.Object)
		} else {
			fmt.Fprintf(&b, "\t\treturn map[string]any{\"type\": %q, \"value\": r}, nil\n", fn.result.Name)
		}
	}
	fmt.Fprintf(&b, "\tdefault:\n\t\treturn nil, gantryfmt.Errorf(\"%s has no function %%q\", name)\n\t}\n}\n", desc.Object)
	return format.Source([]byte(b.String()))
}

const dispatcherCommon = `func main() {
	gantryos.Exit(gantryDispatch())
}

func gantryDispatch() (code int) {
	if len(gantryos.Args) != 4 || gantryos.Args[1] != "invoke" {
		gantryfmt.Fprintln(gantryos.Stderr, "usage: dispatcher invoke SPEC RESULT")
		return 2
	}
	var request struct {
		Function string                           ` + "`json:\"function\"`" + `
		Args     map[string]gantryjson.RawMessage ` + "`json:\"args\"`" + `
	}
	body, err := gantryio.ReadAll(gantryos.Stdin)
	if err == nil {
		err = gantryjson.Unmarshal(body, &request)
	}
	if err != nil {
		gantryfmt.Fprintln(gantryos.Stderr, "error: reading the request:", err)
		return 2
	}
	defer func() {
		if p := recover(); p != nil {
			gantryfmt.Fprintf(gantryos.Stderr, "panic: %v\n\n%s", p, gantrydebug.Stack())
			code = 1
		}
	}()
	result, err := gantryCall(gantrycontext.Background(), request.Function, request.Args)
	if err != nil {
		gantryReport(err)
		return 1
	}
	out, err := gantryjson.Marshal(result)
	if err == nil {
		err = gantryos.WriteFile(gantryos.Args[3], out, 0o600)
	}
	if err != nil {
		gantryfmt.Fprintln(gantryos.Stderr, "error: writing the result:", err)
		return 1
	}
	return 0
}

// gantryReport prints an error; a failed exec (any error with Cmd, ExitCode,
// Stdout and Stderr fields, as in gantry's and Dagger's SDKs) with the tails
// of its output.
func gantryReport(err error) {
	gantryfmt.Fprintln(gantryos.Stderr, "error:", gantryFirstLine(err.Error()))
	for e := err; e != nil; e = gantryerrors.Unwrap(e) {
		v := gantryreflect.ValueOf(e)
		if v.Kind() == gantryreflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() != gantryreflect.Struct {
			continue
		}
		cmd, code := v.FieldByName("Cmd"), v.FieldByName("ExitCode")
		stdout, stderr := v.FieldByName("Stdout"), v.FieldByName("Stderr")
		if !cmd.IsValid() || !code.IsValid() || !stdout.IsValid() || !stderr.IsValid() {
			continue
		}
		gantryfmt.Fprintf(gantryos.Stderr, "  command: %v\n  exit code: %v\n", cmd.Interface(), code.Interface())
		for _, stream := range []struct {
			name string
			text string
		}{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
			lines := gantrystrings.Split(gantrystrings.TrimRight(stream.text, "\n"), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			if gantrystrings.TrimSpace(stream.text) != "" {
				gantryfmt.Fprintf(gantryos.Stderr, "  --- %s (last lines) ---\n  %s\n", stream.name, gantrystrings.Join(lines, "\n  "))
			}
		}
		return
	}
	if rest := gantrystrings.SplitN(err.Error(), "\n", 2); len(rest) == 2 {
		gantryfmt.Fprintln(gantryos.Stderr, rest[1])
	}
}

func gantryFirstLine(text string) string {
	return gantrystrings.SplitN(text, "\n", 2)[0]
}
`
