//! EnvFile and JSONValue.

use serde_json::json;

use super::{data, error, schema};

#[tokio::test]
async fn env_files_read_values_like_a_shell() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ envFile { withVariable(name: "GREETING", value: "bonjour") { withVariable(name: "NAME", value: "\"monde\"") {
             withVariable(name: "message", value: "$GREETING, ${NAME}!") {
               get(name: "message") raw: get(name: "message", raw: true) absent: get(name: "absent")
               exists(name: "NAME") variables { name value }
               asFile { name contents }
               withoutVariable(name: "NAME") { exists(name: "NAME") }
             } } } } }"#,
    )
    .await;
    let e = &out["envFile"]["withVariable"]["withVariable"]["withVariable"];
    assert_eq!(e["get"], "bonjour, monde!");
    assert_eq!(e["raw"], "$GREETING, ${NAME}!");
    assert_eq!(e["absent"], "");
    assert_eq!(e["exists"], true);
    assert_eq!(
        e["variables"],
        json!([{"name": "GREETING", "value": "bonjour"}, {"name": "NAME", "value": "monde"}, {"name": "message", "value": "bonjour, monde!"}])
    );
    assert_eq!(
        e["asFile"],
        json!({"name": ".env", "contents": "GREETING=bonjour\nNAME=\"monde\"\nmessage=$GREETING, ${NAME}!\n"})
    );
    assert_eq!(e["withoutVariable"]["exists"], false);
    let (message, _) = error(
        &schema,
        r#"{ envFile { withVariable(name: "a", value: "$b") { withVariable(name: "b", value: "$a") { get(name: "a") } } } }"#,
    )
    .await;
    assert!(message.contains("circular"), "{message}");
}

#[tokio::test]
async fn files_become_env_files_and_container_variables() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r##"{ file(name: ".env", contents: "# settings\nexport APP_PORT=8080\nAPP_HOST='0.0.0.0'\nOTHER=x\n") {
             asEnvFile { namespace(prefix: "app") { variables { name value id } } id }
           } }"##,
    )
    .await;
    let env = &out["file"]["asEnvFile"];
    assert_eq!(env["namespace"]["variables"][0]["name"], "HOST");
    assert_eq!(env["namespace"]["variables"][1]["value"], "8080");
    let variable = env["namespace"]["variables"][0]["id"].as_str().unwrap();
    let loaded = data(
        &schema,
        &format!(r#"{{ loadEnvVariableFromID(id: "{variable}") {{ name value }} }}"#),
    )
    .await;
    assert_eq!(
        loaded["loadEnvVariableFromID"],
        json!({"name": "HOST", "value": "0.0.0.0"})
    );
    let env_id = env["id"].as_str().unwrap();
    let container = data(
        &schema,
        &format!(
            r#"{{ container {{ withEnvVariable(name: "OTHER", value: "old") {{ withEnvFileVariables(source: "{env_id}") {{
                 envVariables {{ name value }} }} }} }} }}"#
        ),
    )
    .await;
    assert_eq!(
        container["container"]["withEnvVariable"]["withEnvFileVariables"]["envVariables"],
        json!([{"name": "OTHER", "value": "x"}, {"name": "APP_HOST", "value": "0.0.0.0"}, {"name": "APP_PORT", "value": "8080"}])
    );
}

#[tokio::test]
async fn json_values_edit_and_decode() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ json { withContents(contents: "{\"name\":\"gantry\",\"tags\":[\"a\",\"b\"],\"n\":3,\"ok\":true}") {
             name: field(path: ["name"]) { asString }
             n: field(path: ["n"]) { asInteger }
             ok: field(path: ["ok"]) { asBoolean }
             tags: field(path: ["tags"]) { asArray { asString id } }
             fields
             contents
             pretty: contents(pretty: true, indent: "\t")
             id
           } } file(name: "x.json", contents: "[1, 2]") { asJSON { asArray { asInteger } } } }"#,
    )
    .await;
    let j = &out["json"]["withContents"];
    assert_eq!(j["name"]["asString"], "gantry");
    assert_eq!(j["n"]["asInteger"], 3);
    assert_eq!(j["ok"]["asBoolean"], true);
    assert_eq!(j["tags"]["asArray"][1]["asString"], "b");
    assert_eq!(j["fields"], json!(["n", "name", "ok", "tags"]));
    assert_eq!(
        j["contents"],
        r#"{"n":3,"name":"gantry","ok":true,"tags":["a","b"]}"#
    );
    assert!(j["pretty"].as_str().unwrap().contains("\n\t\"n\": 3"));
    assert_eq!(
        out["file"]["asJSON"]["asArray"],
        json!([{"asInteger": 1}, {"asInteger": 2}])
    );
    let item = j["tags"]["asArray"][0]["id"].as_str().unwrap();
    let root = j["id"].as_str().unwrap();
    let edited = data(
        &schema,
        &format!(
            r#"{{ loadJSONValueFromID(id: "{root}") {{ withField(path: ["meta", "first"], value: "{item}") {{ contents }} }}
               node(id: "{item}") {{ ... on JSONValue {{ asString }} }}
               json {{ newInteger(value: 7) {{ contents }} newString(value: "s") {{ contents }} newBoolean(value: false) {{ contents }} contents }} }}"#
        ),
    )
    .await;
    assert_eq!(
        edited["loadJSONValueFromID"]["withField"]["contents"],
        r#"{"meta":{"first":"a"},"n":3,"name":"gantry","ok":true,"tags":["a","b"]}"#
    );
    assert_eq!(edited["node"]["asString"], "a");
    assert_eq!(
        edited["json"],
        json!({"newInteger": {"contents": "7"}, "newString": {"contents": "\"s\""}, "newBoolean": {"contents": "false"}, "contents": "null"})
    );
    let (message, code) = error(
        &schema,
        r#"{ json { withContents(contents: "{oops") { contents } } }"#,
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("invalid JSON"), "{message}");
    let (message, _) = error(&schema, r#"{ json { field(path: ["x"]) { contents } } }"#).await;
    assert!(
        message.contains("can't lookup field 'x' in non-object value"),
        "{message}"
    );
}
