//! Git sources against local servers only: `file://`, `git daemon`,
//! `git http-backend` (smart HTTP with basic auth) and `sshd` (with an
//! SSH agent) on loopback.

use serde_json::json;

use crate::servers::{git, git_http_server, sample_repo, GitDaemon, SshServer};
use crate::support::{busybox, data, error_message, files_containing, run, text, Server};

const REFS: &str = r#"
query($url: String!) {
  git(url: $url) {
    url
    head { commit ref }
    main: branch(name: "main") { commit ref }
    feature: branch(name: "feature") { commit }
    annotated: tag(name: "v1.0.0") { commit ref }
    byRef: ref(name: "v1.2.0") { commit ref }
    latestVersion { ref }
    tags
    vTags: tags(patterns: ["v1.2*"])
    branches
  }
}"#;

#[test]
fn refs_resolve_against_a_file_remote() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let url = format!("file://{}", repo.display());
    let server = Server::start();
    let answer = run(&server, REFS, json!({ "url": url }));
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let first = git(&repo, &["rev-parse", "HEAD~1"]);
    assert_eq!(text(&answer, "git.url"), url);
    assert_eq!(text(&answer, "git.head.commit"), head);
    assert_eq!(text(&answer, "git.head.ref"), "refs/heads/main");
    assert_eq!(text(&answer, "git.main.commit"), head);
    assert_eq!(text(&answer, "git.feature.commit"), first);
    // An annotated tag resolves to its commit, not the tag object.
    assert_eq!(text(&answer, "git.annotated.commit"), first);
    assert_eq!(text(&answer, "git.annotated.ref"), "refs/tags/v1.0.0");
    assert_eq!(text(&answer, "git.byRef.ref"), "refs/tags/v1.2.0");
    assert_eq!(text(&answer, "git.latestVersion.ref"), "refs/tags/v1.2.0");
    assert_eq!(answer["git"]["tags"], json!(["v1.0.0", "v1.2.0"]));
    assert_eq!(answer["git"]["vTags"], json!(["v1.2.0"]));
    assert_eq!(answer["git"]["branches"], json!(["feature", "main"]));

    let missing = server.query_vars(
        r#"query($url: String!) { git(url: $url) { branch(name: "nope") { commit } } }"#,
        &json!({ "url": url }),
    );
    assert!(
        error_message(&missing).contains("branch \"nope\""),
        "{missing}"
    );
    let short = server.query_vars(
        r#"query($url: String!) { git(url: $url) { commit(id: "abc123") { commit } } }"#,
        &json!({ "url": url }),
    );
    assert!(
        error_message(&short).contains("invalid commit SHA"),
        "{short}"
    );
}

const TREES: &str = r#"
query($url: String!, $keep: Boolean) {
  git(url: $url, keepGitDir: $keep) {
    head {
      kept: tree { entries head: file(path: ".git/HEAD") { contents } }
      discarded: tree(discardGitDir: true) { entries file(path: "src/main.txt") { contents } }
    }
  }
}"#;

#[test]
fn trees_keep_git_dir_unless_asked_not_to() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let url = format!("file://{}", repo.display());
    let server = Server::start();
    let answer = run(&server, TREES, json!({ "url": url }));
    let kept = &answer["git"]["head"]["kept"];
    assert_eq!(kept["entries"], json!([".git/", "README.md", "src/"]));
    assert_eq!(text(kept, "head.contents"), "ref: refs/heads/main\n");
    let discarded = &answer["git"]["head"]["discarded"];
    assert_eq!(discarded["entries"], json!(["README.md", "src/"]));
    assert_eq!(text(discarded, "file.contents"), "second\n");
    // keepGitDir: false on the repository discards it from every tree.
    let answer = run(
        &server,
        r#"query($url: String!) { git(url: $url, keepGitDir: false) { head { tree { entries } } } }"#,
        json!({ "url": url }),
    );
    assert_eq!(
        answer["git"]["head"]["tree"]["entries"],
        json!(["README.md", "src/"])
    );
}

#[test]
fn a_commit_is_fetched_once_then_only_its_ref_is_resolved() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let daemon = GitDaemon::start(root.path(), &root.path().join("daemon.log"));
    let url = daemon.url("repo");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let tree_query = r#"
      query($url: String!) { git(url: $url) { branch(name: "main") {
        tree(discardGitDir: true) { file(path: "src/main.txt") { contents } } } } }"#;
    let mut server = Server::start();
    let answer = run(&server, tree_query, json!({ "url": url }));
    assert_eq!(text(&answer, "git.branch.tree.file.contents"), "second\n");
    // One listing and one fetch.
    assert_eq!(daemon.upload_packs(), 2, "{}", log(&root));
    // The same engine answers again from memory: no request at all.
    run(&server, tree_query, json!({ "url": url }));
    assert_eq!(daemon.upload_packs(), 2);
    // A new engine on the same state resolves the branch (one listing) and
    // finds the commit's tree in its store: no fetch.
    server.restart();
    let answer = run(&server, tree_query, json!({ "url": url }));
    assert_eq!(text(&answer, "git.branch.tree.file.contents"), "second\n");
    assert_eq!(daemon.upload_packs(), 3, "{}", log(&root));
    // A commit named in full needs no listing either.
    server.restart();
    let by_commit = format!(
        r#"{{ git(url: "{url}") {{ commit(id: "{head}") {{
            tree(discardGitDir: true) {{ entries }} }} }} }}"#
    );
    let answer = data(server.query(&by_commit));
    assert_eq!(
        answer["git"]["commit"]["tree"]["entries"],
        json!(["README.md", "src/"])
    );
    assert_eq!(daemon.upload_packs(), 3, "{}", log(&root));
    // A new commit on the branch is a new tree.
    std::fs::write(repo.join("src/main.txt"), "third\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "third"]);
    server.restart();
    let answer = run(&server, tree_query, json!({ "url": url }));
    assert_eq!(text(&answer, "git.branch.tree.file.contents"), "third\n");
}

fn log(root: &tempfile::TempDir) -> String {
    std::fs::read_to_string(root.path().join("daemon.log")).unwrap_or_default()
}

#[test]
fn smart_http_with_basic_auth_takes_the_token_as_a_secret() {
    require_runtime!();
    let password = "s3cret-git-token-4711";
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let http = git_http_server(root.path(), Some(("gantry", password)));
    let url = http.url("/repo");
    let server = Server::start();
    let anonymous = server.query_vars(
        r#"query($url: String!) { git(url: $url) { head { commit } } }"#,
        &json!({ "url": url }),
    );
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{anonymous}"
    );
    let query = r#"
      query($password: String!) {
        setSecret(name: "git-token", plaintext: $password) { id }
      }"#;
    let secret = text(
        &run(&server, query, json!({ "password": password })),
        "setSecret.id",
    );
    let answer = run(
        &server,
        r#"query($url: String!, $secret: ID!) {
          git(url: $url, httpAuthUsername: "gantry", httpAuthToken: $secret) {
            head { commit tree { file(path: "README.md") { contents } } } } }"#,
        json!({ "url": url, "secret": secret }),
    );
    assert_eq!(
        text(&answer, "git.head.commit"),
        git(&repo, &["rev-parse", "HEAD"])
    );
    assert_eq!(text(&answer, "git.head.tree.file.contents"), "first\n");
    // A wrong token fails as an authentication error that holds no secret.
    let bad = text(
        &run(
            &server,
            r#"{ setSecret(name: "bad", plaintext: "not-the-password-123") { id } }"#,
            json!({}),
        ),
        "setSecret.id",
    );
    let refused = server.query_vars(
        r#"query($url: String!, $secret: ID!) {
          git(url: $url, httpAuthUsername: "gantry", httpAuthToken: $secret) { head { commit } } }"#,
        &json!({ "url": url, "secret": bad }),
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{refused}"
    );
    assert!(!refused.to_string().contains("not-the-password-123"));
    // The token is in no answer, log or file of the state directory.
    assert!(!answer.to_string().contains(password));
    assert!(!server.log().contains(password));
    assert!(files_containing(&server.state_dir(), password.as_bytes()).is_empty());
}

#[test]
fn a_directory_holding_a_repository_is_one_as_git() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let url = format!("file://{}", repo.display());
    let server = Server::start();
    let answer = run(
        &server,
        r#"query($url: String!) { git(url: $url) { head { tree(depth: 0) { asGit {
            branches
            url
            head { commit tree(discardGitDir: true) { entries } }
        } } } } }"#,
        json!({ "url": url }),
    );
    let local = &answer["git"]["head"]["tree"]["asGit"];
    assert_eq!(local["branches"], json!(["main"]));
    assert!(local["url"].is_null());
    assert_eq!(
        text(local, "head.commit"),
        git(&repo, &["rev-parse", "HEAD"])
    );
    assert_eq!(
        local["head"]["tree"]["entries"],
        json!(["README.md", "src/"])
    );
    let plain = server.query(
        r#"{ directory { withNewFile(path: "a", contents: "b") { asGit { head { commit } } } } }"#,
    );
    assert!(
        error_message(&plain).contains("not a git repository"),
        "{plain}"
    );
}

#[test]
fn ssh_remotes_authenticate_through_the_agent_socket_and_check_known_hosts() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let ssh = SshServer::start(&root.path().join("ssh"));
    let url = ssh.url(&repo);
    let server = Server::start();
    let socket = text(
        &run(
            &server,
            r#"query($path: String!) { host { unixSocket(path: $path) { id } } }"#,
            json!({ "path": ssh.agent_socket.display().to_string() }),
        ),
        "host.unixSocket.id",
    );
    let query = r#"query($url: String!, $socket: ID, $hosts: String) {
        git(url: $url, sshAuthSocket: $socket, sshKnownHosts: $hosts) {
          head { commit tree { file(path: "README.md") { contents } } } } }"#;
    // Without the agent the engine holds no key the server takes.
    let refused = server.query_vars(query, &json!({ "url": url }));
    assert!(
        error_message(&refused).contains("pass the socket of an SSH agent"),
        "{refused}"
    );
    let answer = run(
        &server,
        query,
        json!({ "url": url, "socket": socket, "hosts": ssh.known_hosts }),
    );
    assert_eq!(
        text(&answer, "git.head.commit"),
        git(&repo, &["rev-parse", "HEAD"])
    );
    assert_eq!(text(&answer, "git.head.tree.file.contents"), "first\n");
    // A server whose key is not the one known_hosts names is not trusted.
    let mistrusted = server.query_vars(
        query,
        &json!({ "url": url, "socket": socket, "hosts": ssh.wrong_known_hosts }),
    );
    assert!(
        error_message(&mistrusted).contains("Host key verification failed"),
        "{mistrusted}"
    );
}

/// A bare copy of `repo` at `root/www/repo.git`, readable over "dumb" HTTP
/// (plain files; `update-server-info` lists the refs and packs).
fn dumb_http_copy(root: &std::path::Path, repo: &std::path::Path) -> std::path::PathBuf {
    let www = root.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let bare = www.join("repo.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            &repo.display().to_string(),
            &bare.display().to_string(),
        ],
    );
    git(&bare, &["update-server-info"]);
    www
}

#[test]
fn a_repository_served_by_a_service_is_fetched_by_the_services_hostname() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let www = dumb_http_copy(root.path(), &repo);
    let server = Server::start();
    // busybox httpd has no git: it serves the repository's files, which
    // git reads as a dumb HTTP remote.
    let out = run(
        &server,
        r#"query($image: String!, $www: String!) { host { directory(path: $www) { id } }
          container { from(address: $image) { withExposedPort(port: 8080) { id } } } }"#,
        json!({ "image": busybox(), "www": www.display().to_string() }),
    );
    let out = run(
        &server,
        r#"query($container: ContainerID!, $www: ID!) { loadContainerFromID(id: $container) {
            withDirectory(path: "/www", source: $www) {
              asService(args: ["httpd", "-f", "-p", "8080", "-h", "/www"]) { id hostname } } } }"#,
        json!({
            "container": text(&out, "container.from.withExposedPort.id"),
            "www": text(&out, "host.directory.id"),
        }),
    );
    let service = &out["loadContainerFromID"]["withDirectory"]["asService"];
    let svc = text(service, "id");
    let url = format!("http://{}:8080/repo.git", text(service, "hostname"));
    let answer = run(
        &server,
        r#"query($url: String!, $svc: ID!) { git(url: $url, experimentalServiceHost: $svc) {
            head { commit ref }
            branches
            main: branch(name: "main") {
              tree(depth: 0) { file(path: "src/main.txt") { contents } entries } }
        } }"#,
        json!({ "url": url, "svc": svc }),
    );
    assert_eq!(
        text(&answer, "git.head.commit"),
        git(&repo, &["rev-parse", "HEAD"])
    );
    assert_eq!(text(&answer, "git.head.ref"), "refs/heads/main");
    assert_eq!(answer["git"]["branches"], json!(["feature", "main"]));
    let tree = &answer["git"]["main"]["tree"];
    assert_eq!(text(tree, "file.contents"), "second\n");
    assert_eq!(tree["entries"], json!([".git/", "README.md", "src/"]));
    // The same URL without the service: the engine's host cannot resolve
    // the service's hostname.
    let without = server.query_vars(
        r#"query($url: String!) { git(url: $url) { head { commit } } }"#,
        &json!({ "url": url }),
    );
    assert!(error_message(&without).contains("ls-remote"), "{without}");
}

/// `git://` has no setting that resolves a host, so the engine rewrites
/// the URL to the service's address for git (not in the checkout's
/// `.git/config`). The service here is `Host.service`, in front of a
/// `git daemon` on the host's loopback.
#[test]
fn a_git_protocol_remote_behind_a_service_is_fetched_by_its_hostname() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let daemon = GitDaemon::start(root.path(), &root.path().join("daemon.log"));
    let server = Server::start();
    let out = run(
        &server,
        r#"query($port: Int!) { host { service(ports: [{ backend: $port }]) { id hostname } } }"#,
        json!({ "port": daemon.port }),
    );
    let svc = text(&out, "host.service.id");
    let url = format!(
        "git://{}:{}/repo",
        text(&out, "host.service.hostname"),
        daemon.port
    );
    let answer = run(
        &server,
        r#"query($url: String!, $svc: ID!) { git(url: $url, experimentalServiceHost: $svc) {
            head { commit tree { file(path: ".git/config") { contents } } } } }"#,
        json!({ "url": url, "svc": svc }),
    );
    assert_eq!(
        text(&answer, "git.head.commit"),
        git(&repo, &["rev-parse", "HEAD"])
    );
    let config = text(&answer, "git.head.tree.file.contents");
    assert!(config.contains(&format!("url = {url}")), "{config}");
    assert_eq!(daemon.upload_packs(), 2, "{}", log(&root));
    // SSH would check the host key under another name: refused, saying so.
    let ssh = server.query_vars(
        r#"query($svc: ID!) { git(url: "ssh://git@svc/repo", experimentalServiceHost: $svc) {
            head { commit } } }"#,
        &json!({ "svc": svc }),
    );
    assert!(
        error_message(&ssh).contains("over http://, https:// or git:// only"),
        "{ssh}"
    );
}

#[test]
fn an_address_loads_a_directory_or_a_file_from_a_git_url() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    sample_repo(root.path(), "repo");
    let daemon = GitDaemon::start(root.path(), &root.path().join("daemon.log"));
    let url = daemon.url("repo");
    let server = Server::start();
    let query = r#"
      query($head: String!, $tagged: String!, $sub: String!, $file: String!, $filtered: String!) {
        head: address(value: $head) { directory { entries } }
        tagged: address(value: $tagged) { directory { entries } }
        sub: address(value: $sub) { directory { entries } }
        file: address(value: $file) { file { contents } }
        filtered: address(value: $filtered) { directory(exclude: [".git", "src"]) { entries } }
        repository: address(value: $head) { gitRepository { branches } }
        ref: address(value: $tagged) { gitRef { ref } }
      }"#;
    let answer = run(
        &server,
        query,
        json!({
            // No ref: HEAD (main), the whole tree with its .git, as git().head.tree() gives it.
            "head": url,
            // A tag from before src/ existed.
            "tagged": format!("{url}#v1.0.0"),
            "sub": format!("{url}#main:src"),
            "file": format!("{url}#feature:README.md"),
            "filtered": format!("{url}#v1.2.0"),
        }),
    );
    assert_eq!(
        answer["head"]["directory"]["entries"],
        json!([".git/", "README.md", "src/"])
    );
    assert_eq!(
        answer["tagged"]["directory"]["entries"],
        json!([".git/", "README.md"])
    );
    assert_eq!(answer["sub"]["directory"]["entries"], json!(["main.txt"]));
    assert_eq!(text(&answer, "file.file.contents"), "first\n");
    assert_eq!(
        answer["filtered"]["directory"]["entries"],
        json!(["README.md"])
    );
    assert_eq!(
        answer["repository"]["gitRepository"]["branches"],
        json!(["feature", "main"])
    );
    assert_eq!(text(&answer, "ref.gitRef.ref"), "refs/tags/v1.0.0");
    let local = server.query(r#"{ address(value: "./src") { gitRef { commit } } }"#);
    assert!(
        error_message(&local).contains("is not a Git URL"),
        "{local}"
    );

    // A file needs its path; a ref the remote lacks is the ref's error.
    let no_path = server.query_vars(
        r#"query($v: String!) { address(value: $v) { file { contents } } }"#,
        &json!({ "v": format!("{url}#main") }),
    );
    assert!(
        error_message(&no_path).contains("URL#REF:PATH"),
        "{no_path}"
    );
    let missing = server.query_vars(
        r#"query($v: String!) { address(value: $v) { directory { entries } } }"#,
        &json!({ "v": format!("{url}#nope") }),
    );
    assert!(error_message(&missing).contains("nope"), "{missing}");
}

#[test]
fn uncommitted_changes_of_a_worktree_are_a_changeset() {
    require_runtime!();
    let root = tempfile::tempdir().unwrap();
    let repo = sample_repo(root.path(), "repo");
    let server = Server::start();
    let query = r#"query($path: String!) { host {
        worktree: directory(path: $path) { asGit { uncommitted {
          isEmpty addedPaths modifiedPaths removedPaths } } }
        bare: directory(path: $path) { directory(path: ".git") { asGit { uncommitted { isEmpty } } } } } }"#;
    let vars = json!({ "path": repo.display().to_string() });
    let clean = run(&server, query, vars.clone());
    assert_eq!(
        clean["host"]["worktree"]["asGit"]["uncommitted"]["isEmpty"], true,
        "{clean}"
    );

    // Modified, added and removed, one of them staged: all uncommitted.
    std::fs::write(repo.join("README.md"), "first\nand more\n").unwrap();
    std::fs::write(repo.join("new.txt"), "new\n").unwrap();
    std::fs::remove_file(repo.join("src/main.txt")).unwrap();
    git(&repo, &["add", "new.txt"]);
    let changed = run(&server, query, vars);
    let changes = &changed["host"]["worktree"]["asGit"]["uncommitted"];
    assert_eq!(changes["isEmpty"], false, "{changed}");
    assert_eq!(changes["addedPaths"], json!(["new.txt"]), "{changed}");
    assert_eq!(changes["modifiedPaths"], json!(["README.md"]), "{changed}");
    assert_eq!(
        changes["removedPaths"],
        json!(["src/main.txt"]),
        "{changed}"
    );
    // A bare repository (the .git directory alone) has no worktree.
    assert_eq!(
        changed["host"]["bare"]["directory"]["asGit"]["uncommitted"]["isEmpty"], true,
        "{changed}"
    );

    // A remote repository has none either.
    let daemon = GitDaemon::start(root.path(), &root.path().join("daemon.log"));
    let remote = run(
        &server,
        r#"query($url: String!) { git(url: $url) { uncommitted { isEmpty } } }"#,
        json!({ "url": daemon.url("repo") }),
    );
    assert_eq!(remote["git"]["uncommitted"]["isEmpty"], true, "{remote}");
}
