//! Compatibility pins: recipes persisted by earlier builds (JSON under
//! `STATE/store/recipes/`) must still load, and node digests and cache keys
//! must not move, or every user's cache would be silently invalidated.
//!
//! The expected values were computed by the code before ops were split into
//! `ops/`; a failure here means an encoding changed. If that is deliberate,
//! bump `ENCODING_VERSION` and recompute the values (and say so in the change).

use std::sync::Arc;

use gantry_core::fake::FakeRuntime;
use gantry_core::ops::{self, ExecArgs, Sharing};
use gantry_core::store::{MemoryStore, RecordKind, Store};
use gantry_core::{Digest, Engine, EngineOptions, Op};

/// `(recipe JSON, node digest, cache key, input digests)`, one or
/// two per op kind. `parent` and `source` stand for two input digests; the
/// cache key maps each input to the sha256 of its digest's hex.
const RECIPES: &[(&str, &str, &str, &[&str])] = &[
    (
        r#"{"op":"scratch","platform":"linux/amd64"}"#,
        "c96a2b7b987897db6550ec8aaf8c946a2aed1361d6d4b8dd87634a6d80da3887",
        "7f1424899236f35a65de554d032ee34c3c2b9f7c2a2fc8d4a7f4472e027de50e",
        &[],
    ),
    (
        r#"{"op":"scratch","platform":null}"#,
        "583a9f82acf273571c3b016aa75111109adc156e32d9ec167af65c9a4b1ce8b4",
        "51328f0415df75dc33ede7611428f1bfffa36d6bb7e82c9810e85e3f126115b3",
        &[],
    ),
    (
        r#"{"op":"from","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","address":"127.0.0.1:5000/busybox:latest"}"#,
        "3ce45dbb37c06b6faea5202cbc392620a3197ce3d5fc3cc0217046df82c307dc",
        "d03b87a5375531195e77f4525e2419cfda9ce1351a304df5dadf6dfe550ca262",
        &["parent"],
    ),
    (
        r#"{"op":"withRootfs","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","directory":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "6dd2fecec9aca54139f047045c24e9cf49d3f85280ca7ddd43ba333fdc0456d7",
        "f136b9547c14d88a792e759d4a00189d7e6242405cb676fe0a4cd3e0a4064119",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withExec","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","exec":{"args":["sh","-c","echo hi"],"use_entrypoint":true,"stdin":"in","redirect_stdin":"","redirect_stdout":"/out","redirect_stderr":"err","expect":"Any","expand":true}}"#,
        "45a2e722d80e120f052b0146b60905d079ad37774d9d5c261c3d49f67f0a64bb",
        "522ce49e7a6c2f9a0a3498f177cd52ea8496d6897fd49a3d6cfdcf9cc9a66d29",
        &["parent"],
    ),
    (
        r#"{"op":"withExec","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","exec":{"args":["true"],"use_entrypoint":false,"stdin":"","redirect_stdin":"","redirect_stdout":"","redirect_stderr":"","expect":"Success","expand":false}}"#,
        "b513e2c1e73329e87573f2fb53318e46bfc9b927731218019c4c19d05dd946fc",
        "7ac8e0da8c9dc0ce0b210e4dfa8916cd705d64823f9923059d7492861a2566d6",
        &["parent"],
    ),
    (
        r#"{"op":"withEnvVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"A","value":"$B","expand":true}"#,
        "ef734fa817c27fc65d40ab83d841d1181aed5276c47e0b58cbb5f96f5b2873af",
        "267856f2fa4b94d075d92bcd07d69d435bd317e584c39c0c734c0493f152916e",
        &["parent"],
    ),
    (
        r#"{"op":"withoutEnvVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"A"}"#,
        "7922a1dae4537ddf794fb6cf9c878d13b57fe9c4c36721cfa3003d04c9891797",
        "bf62f6ecb7e10106a482492ca3b3c28a4c2c180caade50af8ed15f6d06dc5229",
        &["parent"],
    ),
    (
        r#"{"op":"withSecretVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"TOKEN","secret":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "b3069d78b3c351a4c9020f328ea2dd05f20efd5f6f018ad6e3f8935e2e75e467",
        "c58cbe65ae47b2f99e9513f186ce17576a7b953778102de8df822c4676ca4941",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withWorkdir","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/src"}"#,
        "75c36474b819325644aeb85fa18f581704e521e254d16e03239928654bc87f44",
        "97aca6178d90dd8579e8eae1c9425d4e6b7660b4e1d214d4bd6243de756620b1",
        &["parent"],
    ),
    (
        r#"{"op":"withUser","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"1000:1000"}"#,
        "12fc81210efd108bab43d851781e996f950328a8b8628d562b97c53dad1b3e6c",
        "8ed1d923c9f98ab792cfcc0ef4b7171e74a06d96b4b4a6f6d07bad7fdf1e7915",
        &["parent"],
    ),
    (
        r#"{"op":"withEntrypoint","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["/bin/sh"],"keepDefaultArgs":true}"#,
        "3d23435c7e2bfe8c506696e428aa4f04767c672110ba435a6895f6accde7365e",
        "1c884ac64a04d94460318634bea709c6113388db3387fb4bae07341a027188a3",
        &["parent"],
    ),
    (
        r#"{"op":"withDefaultArgs","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["-c","x"]}"#,
        "5e113c188dbecd8132afb25cac5c2d0cb961c4d87d787cd628a9b86a75ff1481",
        "49806fb74c742ed51a78ca96687c51a5951e36fff7e4d8a9df3e3fe51e757511",
        &["parent"],
    ),
    (
        r#"{"op":"withLabel","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"l","value":"v"}"#,
        "c92de95e167dd4692d9082ac625ca2d04b0c431c18e9589426b92b4d3043c426",
        "3fb01ae380376da54ac6393a02cefa40173893a953c1705679ba54b12f369fd5",
        &["parent"],
    ),
    (
        r#"{"op":"withContent","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/app","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","permissions":493,"owner":"1:2","include":["*.go"],"exclude":["vendor"]}"#,
        "1bcf6148d33ef9412dfba68d25f1f969dfc7c1596fbc32459ff3b24c97f8b9fb",
        "c8dbced20d7ae0f40721c9f4807d8abe5f990b064d1741d1448f3c462fff0a2d",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withContent","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"f","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","permissions":null,"owner":"","include":[],"exclude":[]}"#,
        "b45e8f42d614d15475a5d94d541ed77ebee9770be0030a302fce947f5fef706e",
        "e9b48f2782f1766edd1559fff1285d248e9ad233366ebd1d0f72a8deae33395a",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withMountedDirectory","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/m","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","readOnly":true}"#,
        "b124ecdab0e0d110fd9da37d2d73c34a57c79db27ebcd3329d001a811b611a5d",
        "0b76f3fec3c5f5fa7946a86e6c2afc317b9def45a4aa27e9bd7fab7b9612df7a",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withMountedFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/m/f","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "6b962812b59e030dee5b35d6663b01cebc1ae2b729cd8813aa4de088f011271f",
        "326d4c327e5e297743164874f95b886e9ddc79bd25e1e18ebeb7c7985c739f86",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withMountedCache","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/cache","cache":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","source":"sha256:19b25856e1c150ca834cffc8b59b23adbd0ec0389e58eb22b3b64768098d002b","sharing":"Locked","owner":"1000"}"#,
        "648b89d484eef7e3d619d1a36d0d762563347bb6e45b9d7fd05c1a6f84c14a66",
        "4bdf6884c7b5b8742da3dd506066687008be248a286c2b44a599f448fd65a13d",
        &["parent", "source", "seed"],
    ),
    (
        r#"{"op":"withMountedCache","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/cache","cache":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","source":null,"sharing":null,"owner":""}"#,
        "b1befa7faaea7e10cfc0d07e6a473e6b3e01dc73b0cc2011b44431c6b4fc404d",
        "962779c19e0d15eaa1e42392283c22fd524367ebd3668e785221e71f6effe7fe",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withMountedTemp","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/tmp","size":1024}"#,
        "fd65ece9bc93970810e346af271a5fd526ddb3310cd1465c19a40d322353bdb7",
        "bd18bfad0380e27f357b262214304a9e19dd3fca99b529e707ae7280ba96a14c",
        &["parent"],
    ),
    (
        r#"{"op":"withMountedSecret","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/run/s","secret":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","mode":256}"#,
        "5a58be3421b067038283e2b3bcd9e5fc3c88600a8c9588789f6e1d3407812e23",
        "cee3faee017388a1552eadf33a611ec0812f757a94d081e041fbc08a546574d4",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withoutMount","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/m"}"#,
        "09dde2a96c519eeec5533e2f7f6562b2488fcdba4ee2ee67e20320b768595e80",
        "0e7a648f7141becd305d36890642a33da4fb3d42f475a0ceba55c2764916e147",
        &["parent"],
    ),
    (
        r#"{"op":"withRegistryAuth","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","address":"127.0.0.1:5001","username":"gantry","secret":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "cd545ddc32653583a11ab69df08d25f04d90c572e1ca2e2b6d8abc6cfc60befe",
        "dc229228da3c2b1d1547aca81882d478041022838613bee2bb567282c7512204",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withoutRegistryAuth","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","address":"127.0.0.1:5001"}"#,
        "ab99b97182347243d3bdd1f3c29fd72cf1c6ef24f8daed900d3c8a4455055966",
        "4207cc327f743626c775408f36032ad87d993418f0ef81bf06225f10e795d03c",
        &["parent"],
    ),
    (
        r#"{"op":"import","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","tag":"t"}"#,
        "aa915d203d6ad20ef2fb9e0ceb8b726e3952347be88cb1e0de7b9ca6dcd87fbf",
        "aef85744268b70f228ecc9cde4443ddab6f1d6c34be03d9fc10e092b1dc4124c",
        &["source"],
    ),
    (
        r#"{"op":"emptyDirectory"}"#,
        "7951623bcd9cfc5ff6cc2fe366cb33ef3c27d21df028ed3461dcce57160ec570",
        "4d2824cb35e6573aed472438015442693a488864341d8caef6b4ac34b0999127",
        &[],
    ),
    (
        r#"{"op":"directoryWithNewFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"a/b.txt","contents":"hello","permissions":384}"#,
        "5d2ef07f3d99219a53fdd696c2cbb86921137b523ee603b58adf414e215b29d6",
        "7e313e2cd61c1db1cec2b27f994d8f7e6f52499edc9e51aec0499ae9cb47d5db",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithNewDirectory","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"a/c","permissions":448}"#,
        "d17b9aba9ab9d1c7ff7d21591a302a33633ee6cf11dab9419c8cb3c36b754d0c",
        "91faf978c14149ab0b7ae10ccb71a3a58b8b9d164cbaa533abd7f1689a56d450",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"x","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","permissions":420}"#,
        "ee0d2d06a7423d02570f71ce34abd387560cd097661580c1a5895fb97237fb84",
        "4929886964504cb39f75d12ff084ade636bade6d104f7b05d2d96d62edce2acc",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithDirectory","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"sub","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","include":["a"],"exclude":["b"]}"#,
        "7a089e724c750ab529accd479c5fac856483b9657d966c7456963f2217db03a3",
        "14bd38ea35a5201d8e8f15d58724ee20db91ca4c2ab54510724175c6a4b32a94",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithoutFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"x"}"#,
        "3b7ecbbdab534c970cd04ba122a0e8f229fa9d20369da068b4c79f8e1c2965e9",
        "bb151a2b2435f7074ad3a77aaa23adbca59455206b3bf5322d0fbd1b47934721",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithoutDirectory","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"sub"}"#,
        "23106dee23e45b86f852c66bfde736d774f60f19fca99325c34794d608b618be",
        "aedb22d13d1008e19429a17c6d1967ccbd71ab3d5398bfade5df38a9ee4d6416",
        &["parent"],
    ),
    (
        r#"{"op":"directoryDiff","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","other":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "08604760a0e46fd665b1990148baacf156298249af0abf5fa7d6816659f83930",
        "e4a0e30feecb1fb93a4e90ecba1e6cff7fbbd4695098746b87d6f5ca5894a225",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithTimestamps","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","timestamp":1700000000}"#,
        "77b8750c5dc821f8f1835c507a7b0f2792aadc3475765e7750c538bdae940ad7",
        "a18b6de7d8893f8c5290a9e266ddab490cdf782b9d6ec144f9f471332915b98a",
        &["parent"],
    ),
    (
        r#"{"op":"subdirectory","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"sub"}"#,
        "e30f170b62873922e815c18b3a865131e6283ac53c4c7d5bc140ddf7587ed66c",
        "9aea6a4db338ef2e4720be81c8e8a06b6b9b4d5da5ce751572f57abd134a026a",
        &["parent"],
    ),
    (
        r#"{"op":"containerDirectory","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/etc"}"#,
        "8ef756e6d5f115b0e207c98057494f04d295d02d5a2d32a5bde4c7f74e5d0b9a",
        "2f62201cc177372b9105acc305acc1a5eae4faf42dbfc5b8730699b23f803ebc",
        &["parent"],
    ),
    (
        r#"{"op":"containerRootfs","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "ae148a0819df1f987aa3463cb93a5dbc41ef7c927b0f6f6f58cc34ea8b12f7fe",
        "a7f5f935eaf24bfd4b8d889a7f9c04d7fa95f5235e6a8269f1c3829c052051a8",
        &["parent"],
    ),
    (
        r#"{"op":"hostDirectory","path":"/src","include":["*.rs"],"exclude":[],"content":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "b076cbfddfab940ce20ff534d3b6ea1a7b17f736d3d5b0c2794be5b4c0198e02",
        "c975e812e31266d0333172568e87b50f471034664599e794b778d018b32334ee",
        &[],
    ),
    (
        r#"{"op":"newFile","contents":"hi","permissions":420}"#,
        "e3c7d918dd215f2580868da57d98544e6a2b55ea2065ccc0569080078cc266ad",
        "be4861248c27e924c8e29021a75f931569666a510613cd93e9160f27ec8917b1",
        &[],
    ),
    (
        r#"{"op":"directoryFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"a/b.txt"}"#,
        "6ec08ff09438c4fd024a8665c95bbf13d7552b1676974cb6692a9f77ad115518",
        "28a52befe02978abf5b0599c30eec3e853e145fcc836b8ba07d832a5aaa9f6da",
        &["parent"],
    ),
    (
        r#"{"op":"containerFile","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/etc/os-release"}"#,
        "3a1d388c5b0e0d8d980e95fe01db7b1367ec9680a0afd8330fd975e58e1f2d76",
        "7740acc0441ae889f66c9fc2d1824090c13e773378daf3302c26c525f581718c",
        &["parent"],
    ),
    (
        r#"{"op":"fileWithName","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"n"}"#,
        "d0421b164e4b7dbf940e18c685218ccff932cd4212284fa95e58929a26cdd8cc",
        "3b7d18dbc857286061dcaf5c02156dac2bd0b72636bf61a9ab9caf33cbd7861a",
        &["parent"],
    ),
    (
        r#"{"op":"fileWithTimestamps","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","timestamp":-5}"#,
        "6d85169f69bb7f89315a60d89a3d3486c0e74cd18f4827ab02da80a36b4b6268",
        "768ef9cfd9d3165763c99d8b99bc1d64845f32d5e0ff5ecf0b5ebb548895c060",
        &["parent"],
    ),
    (
        r#"{"op":"hostFile","path":"/src/README.md","content":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "97d67ecf91379c784910a4289a12f996ab0348b73776c5ea48f1483b293d57c2",
        "06ba5c2f80f45c5552e8cf79ee44f2ff1eb9656df4b015d9fb75b4f5e886a3ae",
        &[],
    ),
    (
        r#"{"op":"asTarball","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "86d77341b19b7994898e5eca9171d16308a27e3716d851ac621bc88690d3f3e6",
        "4c19b137604dc1d91362100ff07b8b119d58b138c3c39d8c91a9d8eae6ed6b49",
        &["parent"],
    ),
    (
        r#"{"op":"secret","name":"token","mac":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "ad644518c5aa639b54b5f67ad1d10f7a54f7decfee915e554806a5b607010394",
        "af34884d5546f0193c7eb25b4579d60063fe90a65ef4b52463094e1ce11f8bbd",
        &[],
    ),
    (
        r#"{"op":"cacheVolume","key":"go-mod"}"#,
        "798f5e2d695d2a64431d5b5f7f5608c15a7662144140f562ce19d0b88e29caf5",
        "5106e1bf9a324cf9483ff7edc9360da1b4047191b92f6fac04194edf3c272f39",
        &[],
    ),
    // Services and sockets.
    (
        r#"{"op":"asService","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["httpd","-f"],"useEntrypoint":true,"expand":false}"#,
        "cc27894038efb776faf0c164aa106fa3ac6184448b71151d4bca153fed1f7a76",
        "46a5c9be9be2ac5b1563736b028ffd0d84ecf1b8708f169d02630ed7e8b86d6b",
        &["parent"],
    ),
    (
        r#"{"op":"serviceWithHostname","service":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","hostname":"db"}"#,
        "3162e0983903716b59eb43cb26d78de6ab2db289e521da018ce5b73d4c6725cf",
        "9fe382b4bfbe0a0384d29bc3f5fbb9299c601995515387f04e6c339463f59e89",
        &["parent"],
    ),
    (
        r#"{"op":"hostService","host":"localhost","ports":[{"frontend":null,"backend":5432,"protocol":"Tcp"},{"frontend":53,"backend":5353,"protocol":"Udp"}]}"#,
        "a9c5fa5b6aea7c63ce8a83247c5f167e5f8715fb40e5762a296a5ba9b721318f",
        "b2c27a8b9c2eb507240047368e2dc2dac500c79483afa281e6b655ccd1fb8a15",
        &[],
    ),
    (
        r#"{"op":"hostTunnel","service":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","native":true,"ports":[{"frontend":8080,"backend":80,"protocol":"Tcp"}]}"#,
        "f8a22219c1afd6b4529feafa2b430bc4537e5c443097d32ba915bbb1edd6753b",
        "16c5fb26e4cb82479b1a2fe6fa115a7ffc1a4ba76b4be5f8e31a064fc29675e6",
        &["parent"],
    ),
    (
        r#"{"op":"withServiceBinding","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","alias":"db","service":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "359b516ce0c93996396153c81133c5db477386d618a2ec70522049df260fbe10",
        "801df61addd481651e69f153133995c3a26792e030de50d858e473d0d12d7415",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withExposedPort","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","port":8080,"protocol":"Tcp","description":"web","skipHealthcheck":true}"#,
        "a6f76f71dcbe5a75d7b4101f0f943aef20ee5970268fd8ceffc9d2ae226224fc",
        "d2a20f11fab9dc5eec7e182bc0561d1639275b36d2b36519b3e2ebac8132238c",
        &["parent"],
    ),
    (
        r#"{"op":"withoutExposedPort","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","port":53,"protocol":"Udp"}"#,
        "7d8766aa1ac9940122c368a15fdb7866fe83ae2aaca6118229c3fc19121e7323",
        "7395d45afc225ea10f48aea9f381625a5feaa9d1d7966c0a7a6827934bcad2c0",
        &["parent"],
    ),
    (
        r#"{"op":"hostUnixSocket","path":"/run/agent.sock","handle":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "a75b4d7ecc4044d1712e7e286e7329d9c25f373b165e4bf27b13d3bdb23bf18b",
        "c56698c81f9fcac6a0718c9797388b059b66a062c033edd6ed350432357e8e46",
        &[],
    ),
    (
        r#"{"op":"withUnixSocket","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/run/agent.sock","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "26186b2a67a554c04bdafa7bdea7e322151862dddad394e74d7aef3e36151980",
        "fa853e431fecaca75cd450e7177c9a7744b4b6ec27a4f08e448ebad00ae0bdc6",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withoutUnixSocket","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/run/agent.sock"}"#,
        "6e74c611b3b80ae92b4827a94efeabc88fdf49e5fabdadbb5c04cb30b0f3cfcd",
        "d56dc503c0c1d1dda584dec912884c217ee530b1f83680478c6a08158a98e853",
        &["parent"],
    ),
    // Tier 2 ops (issue 20), pinned when they were added.
    (
        r#"{"op":"withSymlink","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","target":"/bin/busybox","linkName":"$HOME/sh","expand":true}"#,
        "1febbffa4ebc3f1e3bac595cfd3b432db5cbf28a240fde1565b6bf7d9d6cbdb2",
        "8852a98dd8575d2d93f972f361d468074cd626e225b2e4db84106b0c9aedd283",
        &["parent"],
    ),
    (
        r#"{"op":"withFiles","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"/app","sources":["sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","sha256:d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"],"permissions":384,"owner":"1000","expand":false}"#,
        "bcf5062d741ed5cfc97fb58fffd4da6e30980ce38e911c1422cfb3dc08998350",
        "87c82be55a22df48ede5f8a167c65c4655b46f5a994fe22a925717900fa84578",
        &["parent", "source", "other"],
    ),
    (
        r#"{"op":"withoutPaths","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","paths":["/tmp/a","b"],"expand":false}"#,
        "c45d1719a5a19ee3f67481afe5a3cd6baab1aebc3ddd834dd8d9b65550c12c09",
        "909368b7ebb5f0be5fd24647d0fde78bc9edcb0f96911e12986e451dbdf4aa66",
        &["parent"],
    ),
    (
        r#"{"op":"withoutWorkdir","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "b3520b9ff2f4ea39c8b6edb1f0a8e1336cfe38b390d28e393277cdf14820a60f",
        "adbc06ebbb1f046a3c0335c4ab975279ef54de77b73c88e968ad80109df6ef95",
        &["parent"],
    ),
    (
        r#"{"op":"withoutLabel","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"l"}"#,
        "39b961d69f24241437238af4f8194d60cfd38d786f2b530db60fc3e57ab4306e",
        "a0837016ff15dec99764298e0d2e40686f0d2f3bda3ad6400fd35e4635d5bac2",
        &["parent"],
    ),
    (
        r#"{"op":"withoutSecretVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"TOKEN"}"#,
        "7ace380a9a56ec9c65b9e2f9e52a6e6d91dbf7ca053b88fb141d9cd2bfd26023",
        "53eb53fb3f20c648b5f38af0147afd3a833b023e13cef01a1d32f1c415cf6dc3",
        &["parent"],
    ),
    (
        r#"{"op":"withAnnotation","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"org.opencontainers.image.title","value":"app"}"#,
        "08b1d262be3df7d3c52448f45955cd42e7a24a4c263f496605e395d66e74430b",
        "57959d66bbb0a7fb708e235930afca19df0eaa5ba3c4c102b327b68cf515f224",
        &["parent"],
    ),
    (
        r#"{"op":"withAnnotation","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"a","value":null}"#,
        "60a0bf19dc4e9d72386c899cb90bc243e69ff72f5d5a84533d0fae1a08d53b95",
        "afeb9cc5848a42850f9e7fa9c482f06713b479ee3f086ae4603e243ec96cb8a0",
        &["parent"],
    ),
    (
        r#"{"op":"withVolatileVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"RUN_ID","value":"1"}"#,
        "4a9fe99af134dc175f257872c17b4d958fe044198ae21c932707730191613900",
        "4d1036f2e5fbe5f9c994ceff1269cd343a7f686e6a0ffafc57e03ca9c0b89896",
        &["parent"],
    ),
    (
        r#"{"op":"containerWithError","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","message":"boom"}"#,
        "bdeb75ad013c461bd3a19dc456eb833e03ea59bac3c299fe963db36be2042040",
        "05353d278af2aefc0336d64265bdf0cb26d01ead1485ed9a8f5414fe7d2a28b3",
        &["parent"],
    ),
    (
        r#"{"op":"withEnvFileVariables","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","source":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "508fbc7d3defbff4dbe71f9c8f648614c5000c06095f296254ca7537efd9ecec",
        "da3b13bd1578b4379220990f8950f679264cdce1d301341553440342d0b55046",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withDefaultTerminalCmd","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["bash","-l"]}"#,
        "7fc1c98e671d1fa5ec310f73d3304efe590505d384cf3d008371e441735871dc",
        "36171d0ec449bbe8eeecf240b45e5fda3d644034b3c93f218e6f8a61f8715aa5",
        &["parent"],
    ),
    (
        r#"{"op":"hostContainerImage","name":"app:latest"}"#,
        "33a60c7aec9275f144527b9d38991494912a5e38b6f80cc7b0dc40f17d36fa24",
        "9814c4520f01d0456df3d0a645af28eacf185fe8f152739f2db99da305a47011",
        &[],
    ),
    (
        r#"{"op":"directoryWithSymlink","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","target":"a.txt","linkName":"link"}"#,
        "45f01ad2b8ada98c71ac4b2d4ea9f7b224709b34946fc1bbc07bcb6b2fe58df2",
        "435299b1211e5d2fc93a443d24d3c5ea6dd32891f16b6fe55518bdeda2f1b45f",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithFiles","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":"src","sources":["sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"],"permissions":null}"#,
        "ba159b82fd6f1115006b17d851bc4b1df0a808f57924c62d971c33a91637fdd3",
        "0170a1d860b4ff8585d27e1a25f38f355e412393f46d2cda36834cae7936580a",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithoutFiles","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","paths":["a","b"]}"#,
        "1c29c666ac26f35c69d3934670c7c2b0acb641091bff92cc8ab34a6b17640715",
        "c559c16c00ab8df79b092cc41c3506abc43e8fcd606ee0983e9fe904557be091",
        &["parent"],
    ),
    (
        r#"{"op":"directoryFilter","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","include":["*.go"],"exclude":["vendor"],"gitignore":true}"#,
        "fde3d676f15311b2d9d4123260935703bf8deeb0ae1f1cdcb221e403041ed975",
        "083a7fffbc4363d9472a275860275ee7f70c136c2c1f7fd42deb6fde868c293c",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithPatch","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","patch":"--- a/x\n+++ b/x\n"}"#,
        "c2514b1e7ab54d8fc36366f384d8cf69752295e8ef03cd8efe573c2915b25119",
        "de0290fffee8d047203c73529013689769cfa4a1323280d3c804a9886ca0d5ba",
        &["parent"],
    ),
    (
        r#"{"op":"directoryWithPatchFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","patch":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "dfaddb8e092730e6743b778f1357ddc6cbea91afc27dc4bed9fc9cf06fe73501",
        "c77dfe70a4f2b3ec88836c47bf4db7ec49920e74b687a905ea1ee747d023f88a",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithChanges","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","changes":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "ab721ecd492bf2d75167a5eb015aa7de1229a5570ab328c52574cd1e80e22341",
        "fb395a7907c513da26bd4cffe007174a14fe31291cd83da9efb9b587d4aa9220",
        &["parent", "source"],
    ),
    (
        r#"{"op":"directoryWithError","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","message":"boom"}"#,
        "275a17deb0f9c1a5e08e16f1e363288d3b583ff3b7545075c4c036e4a4678987",
        "b853c48b512a8c767bd60aed5f985860faa370ddabe2e3bb085c67d6c13de2e7",
        &["parent"],
    ),
    (
        r#"{"op":"changesetDirectory","changeset":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","side":"layer"}"#,
        "a7ea899982abfb6a1a82de336e943b4ff591f2b35cfe1b3f936b3282f391a514",
        "57a88412de4655294fefc859ea841633e7a9e0ac1045e7bdcd349fa13e52a2f6",
        &["parent"],
    ),
    (
        r#"{"op":"fileWithReplaced","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","search":"a","replacement":"b","all":false,"firstFrom":3}"#,
        "9abd2b48104cf083293444f97d30559ceb210b6ac06a55fcbdb388c64ae6534f",
        "3c06115ab7db451bf4612d009fe0c6a5a9680d22bd69cee0e0869d0e663a826f",
        &["parent"],
    ),
    (
        r#"{"op":"changesetAsPatch","changeset":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "23ade01527892f681981e4dabbd11373a8276eb74171587b21fa5cb006235ced",
        "0526219ca95accae3af224d4994b8b8138d0ac84771add292da65b6eaa978c65",
        &["parent"],
    ),
    (
        r#"{"op":"envFileAsFile","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "2ce7a2c8672c23b11ffaed06097f38009425ac5c0ad409be04f448cf5de390c6",
        "a1e45b601a25016d7bb1f2a3361393d68613181b5a894f08fc87b6fdc10d0ded",
        &["parent"],
    ),
    (
        r#"{"op":"directoryChanges","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","from":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "2da055bc61b1e21260639c571c33648ad8d60f535b1f5dd7e3dab6e63a977af6",
        "c0db4ad4aa8240ee11ce960246c3eba04ff8738197a8bc5e3e00d609b244512b",
        &["parent", "source"],
    ),
    (
        r#"{"op":"emptyChangeset"}"#,
        "b8f5ddc8d09ae80c404f5bfe8a3a84c42638bbb060a9fe75bd609f0fcc56f9f0",
        "f7c2e88031fd28067dee336ddf5c403422fe86bd0d3fbd69a13c155ed12116c3",
        &[],
    ),
    (
        r#"{"op":"changesetMerge","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","others":["sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","sha256:d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"],"onConflict":"PREFER_OURS"}"#,
        "ef28ef2ce48706b356f2f7e4f4a5f267088252dc04d118d53a0356dbe9e01d3c",
        "064bdf17379298302f6b638f98ffde3d5356376eb7e01cc8188a3f920c800d57",
        &["parent", "source", "other"],
    ),
    (
        r#"{"op":"envFile","expand":true}"#,
        "eee1701f1c560f8c1255efddaffe7e1ab18f8ce4a1c2c7d00eee905de7423854",
        "653a49667b8889de545cdb5cd26b84b63e99b75df77fffa1caba82777bf7df16",
        &[],
    ),
    (
        r#"{"op":"fileAsEnvFile","file":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","expand":false}"#,
        "68e060a9dff4f905cdfedeb6cac9e91630623b4f49a8eae9830b05a032ba5ae8",
        "882ec44b5a6af34d40dffe9eb52da09c45c72e75cb5db839ba642003d4ee8442",
        &["parent"],
    ),
    (
        r#"{"op":"envFileWithVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"A","value":"${B}"}"#,
        "ba6d22edc6000683cf36b74dc51b37333366104e9b2165d0f9f5d9c7a4159d51",
        "db20c86a586a99ec516484e90e3cf3847428c417b293292767ee6120aec85061",
        &["parent"],
    ),
    (
        r#"{"op":"envFileWithoutVariable","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","name":"A"}"#,
        "b87818fc8d8d5e22722e4ceeee2d786f48ab2d8f4b83216d9cbfe762e4894262",
        "94a0d17ab5590c04f60655c25ae9aa422f2a50a2a6302c6d0e3a7c1f926c4b47",
        &["parent"],
    ),
    (
        r#"{"op":"envFileNamespace","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","prefix":"my_app"}"#,
        "1723c27204f055ebe79ce733993d6df148ad84aca411b06b9e147f6168670fce",
        "81272aa30f1cfd9ad6054c8602f475bbfc05319eed2d63f2c57bec3419ede174",
        &["parent"],
    ),
    (
        r#"{"op":"jsonLiteral","contents":"{\"a\":[1,true]}"}"#,
        "1ed48983a61c525251543c785d72ce0f19805f56f9bb557557c71938f5f28d40",
        "1b722df8a68684fc2967aa3b064a9735e2e24a3649089c7a32fe1821499e8321",
        &[],
    ),
    (
        r#"{"op":"fileAsJson","file":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "77a6d7abfe8d07f1600563c9f1b6ef2873179dcba3ffa90c7ef5a6b891d4de97",
        "87d074fc82140e78398d36ecbf64b936696f93cda8d813d3f3dac44e2f554a32",
        &["parent"],
    ),
    (
        r#"{"op":"jsonField","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":["a","b"]}"#,
        "1a637a03c6ba897da706d13f79a9580e845b2131e55537c99fe9e7e33d624b48",
        "d95dd9e645bbeb99f87854c31434300936849518c023c19ab97d70e32778e2aa",
        &["parent"],
    ),
    (
        r#"{"op":"jsonWithField","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","path":["a"],"value":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "10bd4caa9ad1f17a5b153ffb8319f18961c0af588b09763d998fc3898a39f112",
        "3c5873e4444b48e4cbed87b9ee6ecc9c24c65d1b79e099d5168b5fe4b811faa1",
        &["parent", "source"],
    ),
    (
        r#"{"op":"jsonItem","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","index":2}"#,
        "423d482130e3b4f0b70216bc3ecf533cd582e2fea776c04fe5e5bab972d70c4e",
        "5cb55423efdc51fbf56dce34e52309a1c0f87a0afa9442bc23aaec84918f4ff4",
        &["parent"],
    ),
    (
        r#"{"op":"git","url":"https://example.com/o/r.git","keepGitDir":true,"sshKnownHosts":"","httpAuthUsername":"u","httpAuthToken":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","httpAuthHeader":null}"#,
        "76ed39243a7db726b86758131cff369111d9150d342f6594c264926cf45e30b1",
        "58a2b72886e29f06876670921742e63ae5d7ad447f80ff4544786c510cf035bb",
        &["source"],
    ),
    (
        r#"{"op":"directoryAsGit","directory":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "0dbbaf7e74509f652815ca6caa155615465e99e920abfd3a6c6c0f88a62314c2",
        "cf7d179c83c7cce4703bf1df38dee584206f131cad12b0db5860166453dea940",
        &["parent"],
    ),
    (
        r#"{"op":"gitRef","repository":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","selector":{"by":"branch","name":"main"}}"#,
        "fae3c0e663190f63795f5895534bd22e3419b6411f18a69c104aa87046c60154",
        "55e80164b4c29d88906b96fad9c24c4ee565ccaa836140f0ad101c3649a9175c",
        &["parent"],
    ),
    (
        r#"{"op":"gitRef","repository":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","selector":{"by":"head"}}"#,
        "df60291ecdacee115a7ddb9bfd0c29ec01e1c1819c041d7572cf7ef62f9a9621",
        "5c1ac7cca3e48a4123f1b07f2600765598145054cd9d12a203652d6b9d7a3b28",
        &["parent"],
    ),
    (
        r#"{"op":"gitTree","reference":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","discardGitDir":true,"depth":1,"includeTags":false}"#,
        "5414f0a6ecfe895d509fb3da9764e92068c10c5f93cdc9a5f87f723b841fe2b4",
        "65663d1898bc0d7aed7ec1286092d139b75daa55a77fa4f4b76d2b537dfacdd8",
        &["parent"],
    ),
    (
        r#"{"op":"http","url":"https://example.com/f.tgz","name":null,"permissions":493,"checksum":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","authHeader":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "246e55af33c396c9a03aba10052647ac2759a039daffc3a4b695f06c593fc5c2",
        "4bc46008c7843daefcb0a5b8a6b82b37c73ba438d292aff611d74d0210b0eb43",
        &["source"],
    ),
    // insecureRootCapabilities on services and default terminal commands,
    // registryService on from (pinned when first served; recipes without
    // them keep the digests above).
    (
        r#"{"op":"asService","container":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["httpd","-f"],"useEntrypoint":true,"expand":false,"insecureRootCapabilities":true}"#,
        "d83d55aa9ee072bd35c8223354868d6fd31c1d19e3fb96b515feed1b6d14c985",
        "5434a98bfb467f5555c798149f7c65282b6c6820a1f42709586ede74c29928fa",
        &["parent"],
    ),
    (
        r#"{"op":"withDefaultTerminalCmd","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","args":["bash","-l"],"insecureRootCapabilities":true}"#,
        "66cd282d369cb09426f6ce8ecad7a8ad80dd100d5e868f6dc3c541cdb234ab1d",
        "beef90bfc4c4a43f6dcf9f07f44fd4a46041bb202ce0f3938ee677f959ae9dc6",
        &["parent"],
    ),
    (
        r#"{"op":"from","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","address":"reg:5000/app:v1","registryService":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"}"#,
        "6926888a61d871adc44d9654066c97acb3e9a359c7f3911bc32524d0c5d6bae3",
        "72bd1d9bbf9bf3c337a774da898fad371348cf1ddc616dec357751f5022e68c5",
        &["parent", "source"],
    ),
    // experimentalServiceHost (pinned when it was first served; recipes
    // without it keep the digests above).
    (
        r#"{"op":"git","url":"http://svc:8080/r.git","keepGitDir":true,"sshKnownHosts":"","httpAuthUsername":"","httpAuthToken":"sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d","httpAuthHeader":null,"serviceHost":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "7869dba1a17b0ce9814e81ed72074973ec3170649de161318a48f61effb20456",
        "6df89d806c35b3f417dff115cad18db3bf72bd4a18dc5f6f93e78671f08893e3",
        &["source", "parent"],
    ),
    (
        r#"{"op":"http","url":"http://svc:8080/f.txt","name":null,"permissions":null,"checksum":null,"authHeader":null,"serviceHost":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c"}"#,
        "e68dee352dfc4219c4e509b917c51a20ce41e7cd4944676e1b2df414a9fcf3b3",
        "48ea2c62e9c4f46f3b599cc95092bd5e151d00d6741b54341ba9042e655053e2",
        &["parent"],
    ),
    (
        r#"{"op":"dockerBuild","context":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","dockerfile":"Dockerfile","platform":null,"buildArgs":[["A","1"]],"target":"","secrets":[["token","sha256:41cf6794ba4200b839c53531555f0f3998df4cbb01a4d5cb0b94e3ca5e23947d"]]}"#,
        "86b4eeeb83481efcf3c5a13e384e8ddcb4e24617a7c31181e0072b1966931a27",
        "bb58aab0d5a6a225938d01703063ff5035dd7f699569543cb1e755a6c9b51802",
        &["parent", "source"],
    ),
    (
        r#"{"op":"withDockerHealthcheck","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","healthcheck":{"args":["true"],"shell":false,"interval":"30s","timeout":"","start_period":"","start_interval":"","retries":3}}"#,
        "fa9ea3694816d1f23f718b74bbbe890cf2f9268c7ce711edcc02f94dc2a9a3e2",
        "01a4f4d1865bcf4e85c19cb20861b74e4fd7f45b49f5646eff8d854e1715b71a",
        &["parent"],
    ),
    (
        r#"{"op":"withDockerHealthcheck","parent":"sha256:e47125968b3b71049fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c","healthcheck":null}"#,
        "faf3161ecfdb7d718dbe8965313995cb63a4cc8725dd5304282d7e81c2fa485a",
        "62a3bcc52a71d1701d5c086a043bf4e1be343510f13577a1a8a47fcabbbd7cdb",
        &["parent"],
    ),
];

fn input_named(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

#[test]
fn persisted_recipes_load_and_keep_their_digests_and_cache_keys() {
    for (json, digest, key, inputs) in RECIPES {
        let op: Op = serde_json::from_str(json).unwrap_or_else(|error| panic!("{json}: {error}"));
        assert_eq!(
            &serde_json::to_string(&op).unwrap(),
            json,
            "recipe JSON changed"
        );
        assert_eq!(&op.digest().hex(), digest, "node digest of {json}");
        let mapped = op.key_with(&mut |input| Digest::of_bytes(input.hex().as_bytes()));
        assert_eq!(&mapped.hex(), key, "cache key of {json}");
        let mut expected: Vec<Digest> = inputs.iter().map(|name| input_named(name)).collect();
        let mut found = op.inputs();
        expected.sort();
        found.sort();
        assert_eq!(found, expected, "inputs of {json}");
    }
}

fn engine() -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let engine = Engine::new(
        Arc::new(FakeRuntime::default()),
        store.clone(),
        EngineOptions {
            max_parallel: 4,
            secret_key: [7; 32],
        },
    );
    (engine, store)
}

fn hex(digest: Option<Digest>) -> String {
    digest.expect("evaluated containers have keys").hex()
}

/// The keys evaluation derives (image keys, exec keys, file and tree keys,
/// secret MACs, read-path keys, cache volume directories) stay put.
#[tokio::test]
async fn content_keys_survive_the_upgrade() {
    let (engine, store) = engine();

    let secret = engine.set_secret("token", "s3cret").digest;
    assert_eq!(
        secret.hex(),
        "9770ed54dcbdde7d163ec55c6402895bb7ed002fd783dd619dcc2b4ea2dc59a1"
    );

    let scratch = engine.add(ops::Scratch { platform: None }).digest;
    let from = engine
        .add(ops::FromImage {
            parent: scratch,
            address: "127.0.0.1:5000/busybox".into(),
            registry_service: None,
        })
        .digest;
    assert_eq!(
        hex(engine.container(from).await.unwrap().key),
        "bfed566f9517c0441e035fa27dbb072ef68cb75e294d728de8a7760eccbfc1be"
    );
    let volume = engine
        .add(ops::CacheVolume {
            key: "go-mod".into(),
            source: None,
            sharing: None,
            owner: String::new(),
        })
        .digest;
    let mounted = engine
        .add(ops::WithMountedCache {
            parent: from,
            path: "/cache".into(),
            cache: volume,
            source: None,
            sharing: Some(Sharing::Locked),
            owner: String::new(),
            inherit_owner: false,
        })
        .digest;
    let exec = engine
        .add(ops::WithExec {
            parent: mounted,
            exec: ExecArgs {
                args: vec!["echo".into(), "hi".into()],
                ..ExecArgs::default()
            },
        })
        .digest;
    let state = engine.container(exec).await.unwrap();
    assert_eq!(
        hex(engine.container(mounted).await.unwrap().key),
        "4ca93402aa5a126663a5383ec945a00cc59542ec803aaa9bd0b82c5ad275ee69"
    );
    let exec_key = "a93b3d6c6e88e585bb27b4d4491dae37717186938656aac9a3be696ebf798ab8";
    assert_eq!(hex(state.key), exec_key);
    let stored = store.get(RecordKind::Exec, &Digest::from_hex(exec_key).unwrap());
    assert!(
        stored.unwrap().is_some(),
        "the exec result is stored under its key"
    );
    let volume_dir = store.cache_volume_dir("go-mod");
    assert!(
        volume_dir.is_dir(),
        "the exec created the volume's directory"
    );
    assert_eq!(
        volume_dir.file_name().unwrap().to_string_lossy(),
        "b991a9bc291e57a0d3e2782cd63289686076365d057a5c06aaf7769a6152b367"
    );

    let file = engine
        .add(ops::NewFile {
            contents: "hello".into(),
            permissions: 0o600,
        })
        .digest;
    let named = engine
        .add(ops::FileWithName {
            parent: file,
            name: "a.txt".into(),
        })
        .digest;
    assert_eq!(
        engine.file(named).await.unwrap().key().hex(),
        "f2459d358c5e3de2fff514fb995de666e9814af96435e49526961f29627f070d"
    );
    let import = engine
        .add(ops::Import {
            source: file,
            tag: String::new(),
        })
        .digest;
    assert_eq!(
        hex(engine.container(import).await.unwrap().key),
        "474df35e2bc446f60c55572171de2c06da54678be49082c94551686cac631fe8"
    );

    let empty = engine.add(ops::EmptyDirectory {}).digest;
    let dir = engine
        .add(ops::DirectoryWithNewFile {
            parent: empty,
            path: "a/b.txt".into(),
            contents: "hello".into(),
            permissions: 0o644,
        })
        .digest;
    let tree_digest = "396fd8085618ba4179494beaa039e065bd7f6148cea391c246700e5a6ac91c18";
    let (tree, key) = engine.directory(dir).await.unwrap();
    assert_eq!(
        (tree.digest().hex(), key.hex()),
        (tree_digest.into(), tree_digest.into())
    );
    let stamped = engine
        .add(ops::DirectoryWithTimestamps {
            parent: dir,
            timestamp: 1_700_000_000,
        })
        .digest;
    let (tree, key) = engine.directory(stamped).await.unwrap();
    assert_eq!(tree.digest().hex(), tree_digest);
    // Changed on purpose when withTimestamps began stamping directories too
    // (their times reach containers, so they are in the key).
    assert_eq!(
        key.hex(),
        "85724613e9f411d55f038a11d487cfd909842a0859a6f141e8746adca84db722"
    );

    let with = engine
        .add(ops::WithContent {
            parent: scratch,
            path: "/src".into(),
            source: dir,
            permissions: None,
            owner: String::new(),
            include: vec![],
            exclude: vec![],
            inherit_owner: false,
            gitignore: false,
        })
        .digest;
    assert_eq!(
        hex(engine.container(with).await.unwrap().key),
        "b752a277e416b86528f258353b907c8c3ef52588831e0ac7047d67ada17cb840"
    );
    let read = engine
        .add(ops::ContainerFile {
            container: with,
            path: "/src/a/b.txt".into(),
        })
        .digest;
    engine.file(read).await.unwrap();
    // Changed on purpose when trees read from containers began to keep
    // owners: reads stored before (all owned by root) are not reused.
    let read_key = "ddbc1af3d3b1cad8862b55675e7aa739b7e60e2020dc51f6a49116ed6beb50ea";
    let stored = store.get(RecordKind::PathRead, &Digest::from_hex(read_key).unwrap());
    assert!(
        stored.unwrap().is_some(),
        "a read tree is stored under its read key"
    );
}
