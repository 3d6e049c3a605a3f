package gantry

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// No engine here: document rendering, arguments and error classification.

func testClient() *Client {
	return &Client{object: newObject(&selection{})}
}

func TestChainingBuildsOneDocument(t *testing.T) {
	client := testClient()
	ctr := client.Container().
		From("alpine").
		WithExec([]string{"sh", "-c", `echo "hi"`}, ContainerWithExecOpts{Expect: ReturnTypeAny, Stdin: ""})
	doc, err := ctr.q.sel("stdout").document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := `query{container{from(address:"alpine"){withExec(args:["sh","-c","echo \"hi\""],expect:ANY){stdout}}}}`
	if doc != want {
		t.Fatalf("document\n got %s\nwant %s", doc, want)
	}
}

func TestZeroOptionalArgumentsAreLeftOut(t *testing.T) {
	client := testClient()
	doc, err := client.Container(ClientContainerOpts{}).
		WithExec([]string{}, ContainerWithExecOpts{UseEntrypoint: false}).
		q.sel("stdout").document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := `query{container{withExec(args:[]){stdout}}}`; doc != want {
		t.Fatalf("got %s, want %s", doc, want)
	}
}

func TestLaterOptsReplaceEarlierOnes(t *testing.T) {
	client := testClient()
	doc, _ := client.Container().
		WithExec([]string{"true"}, ContainerWithExecOpts{Stdin: "a"}, ContainerWithExecOpts{Stdin: "b"}).
		q.sel("stdout").document(context.Background())
	if !strings.Contains(doc, `stdin:"b"`) || strings.Contains(doc, `stdin:"a"`) {
		t.Fatalf("got %s", doc)
	}
}

func TestObjectsAreAddressedByKnownID(t *testing.T) {
	client := testClient()
	dir := &Directory{client.load("Directory", "Directory:abc")}
	// The ID is known: rendering sends nothing.
	doc, err := client.Container().WithDirectory("/src", dir).q.sel("sync").document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := `query{container{withDirectory(path:"/src",source:"Directory:abc"){sync}}}`; doc != want {
		t.Fatalf("got %s, want %s", doc, want)
	}
	loaded, _ := dir.WithNewFile("a", "b").q.sel("id").document(context.Background())
	if want := `query{node(id:"Directory:abc"){... on Directory{withNewFile(path:"a",contents:"b"){id}}}}`; loaded != want {
		t.Fatalf("got %s, want %s", loaded, want)
	}
}

func TestNilObjectArgumentIsAnError(t *testing.T) {
	client := testClient()
	var dir *Directory
	_, err := client.Container().WithDirectory("/src", dir).q.sel("sync").document(context.Background())
	if !errors.Is(err, errNilObject) {
		t.Fatalf("got %v", err)
	}
}

func TestWalkMapsListsOverTheRestOfTheChain(t *testing.T) {
	root := &selection{}
	q := root.sel("container").sel("envVariables").sel("id")
	data := map[string]any{"container": map[string]any{"envVariables": []any{
		map[string]any{"id": "EnvVariable:1"}, map[string]any{"id": "EnvVariable:2"},
	}}}
	got := walk(data, q.chain())
	list, ok := got.([]any)
	if !ok || len(list) != 2 || list[1] != "EnvVariable:2" {
		t.Fatalf("got %#v", got)
	}
}

func TestErrorClassification(t *testing.T) {
	execErr := errorFor([]GraphQLError{{
		Message: "process \"false\" did not complete successfully: exit code: 1",
		Extensions: map[string]any{
			"_type": "EXEC_ERROR", "exitCode": float64(1), "stdout": "out\n", "stderr": "err\n",
			"cmd": []any{"false"}, "code": "EXEC_FAILED",
		},
	}})
	var asExec *ExecError
	if !errors.As(execErr, &asExec) || asExec.ExitCode != 1 || asExec.Stdout != "out\n" || asExec.Cmd[0] != "false" {
		t.Fatalf("got %#v", execErr)
	}
	var asQuery *QueryError
	if !errors.As(execErr, &asQuery) || asQuery.Code != "EXEC_FAILED" {
		t.Fatalf("an ExecError is also a QueryError: %#v", asQuery)
	}
	if strings.Count(execErr.Error(), "exit code: 1") != 1 || !strings.Contains(execErr.Error(), "stderr:\nerr") {
		t.Fatalf("message: %s", execErr)
	}
	plain := errorFor([]GraphQLError{{Message: "bad", Extensions: map[string]any{"code": "NOT_FOUND"}}, {Message: "worse"}})
	if errors.As(plain, &asExec) {
		t.Fatal("a plain query error is not an ExecError")
	}
	if plain.Error() != "bad (and 1 more errors)" {
		t.Fatalf("message: %s", plain)
	}
}

func TestInputObjectsAreObjectLiterals(t *testing.T) {
	client := testClient()
	build := client.Directory().DockerBuild(DirectoryDockerBuildOpts{
		BuildArgs: []BuildArg{{Name: "A", Value: `quote " and \ é`}, {Name: "B", Value: ""}},
	})
	doc, err := build.q.sel("sync").document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := `query{directory{dockerBuild(buildArgs:[{name:"A",value:"quote \" and \\ é"},{name:"B",value:""}]){sync}}}`
	if doc != want {
		t.Fatalf("document\n got %s\nwant %s", doc, want)
	}
}

func TestInputObjectOptionalFieldsAtZeroAreLeftOut(t *testing.T) {
	client := testClient()
	svc := client.Host().Service([]PortForward{
		{Backend: 80},
		{Frontend: 5353, Backend: 53, Protocol: NetworkProtocolUDP},
		// A required field is sent even at its zero value.
		{},
	})
	doc, err := svc.q.sel("hostname").document(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := `query{host{service(ports:[{backend:80},{frontend:5353,backend:53,protocol:UDP},{backend:0}]){hostname}}}`
	if doc != want {
		t.Fatalf("document\n got %s\nwant %s", doc, want)
	}
}
