//! `Container.withoutFile`, `withoutFiles` and `withoutDirectory`: paths
//! removed from a container's filesystem.
//!
//! Pending layers are pruned in memory. A runtime applies layers by
//! unpacking tars, which can add files but not delete them, so paths that
//! may be in the container's image are removed by running `rm -rf` in that
//! image (once per image and path list: the result is cached like an
//! exec's), and the pruned layers go on top of the result. An image
//! without `rm` gets an error saying so.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{info_span, Instrument};

use super::exec::{recall, stored, usable};
use crate::context::Context;
use crate::context::DEFAULT_PATH;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::events::{exec_name, StepState};
use crate::runtime::{ExecSpec, RootfsSpec};
use crate::store::RecordKind;
use crate::text::tail;
use crate::tree;
use crate::value::{ExecRecord, Kind, Layer, Value};

/// `Container.withoutFile(s)`/`withoutDirectory`: `paths` (relative to the
/// workdir) removed, whatever they are; missing ones are not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutPaths {
    pub parent: Digest,
    pub paths: Vec<String>,
    /// Expand `$VAR` in the paths from the container's environment.
    pub expand: bool,
}

impl Operation for WithoutPaths {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.paths).bool(self.expand);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let workdir = parent.workdir();
        let mut targets = Vec::new();
        for path in &self.paths {
            let target = tree::absolute(&workdir, &parent.path_arg(path, self.expand))?;
            if target == "/" {
                return Err(Error::InvalidArgument {
                    message: "cannot remove the root directory of a container".into(),
                });
            }
            targets.push(target);
        }
        let layers = prune_layers(&parent.rootfs.layers, &targets)?;
        let image_id = match &parent.rootfs.image_id {
            Some(image) => Some(remove_from_image(cx, call, image, &targets).await?),
            None => None,
        };
        parent.derive(call.key, |state| {
            state.rootfs.image_id = image_id;
            state.rootfs.layers = layers;
            state.image_ref = None;
            Ok(())
        })
    }
}

/// The layers without anything at or under `targets` (absolute paths).
fn prune_layers(layers: &[Layer], targets: &[String]) -> Result<Vec<Layer>> {
    let mut out = Vec::new();
    'layers: for layer in layers {
        let mut tree = (*layer.tree).clone();
        for target in targets {
            if layer.dest == *target || layer.dest.starts_with(&format!("{target}/")) {
                continue 'layers; // the whole layer lies under a removed path
            }
            let inner = if layer.dest == "/" {
                Some(&target[1..])
            } else {
                target.strip_prefix(&format!("{}/", layer.dest))
            };
            if let Some(inner) = inner {
                tree.remove(&tree::normalize(inner)?);
            }
        }
        out.push(Layer {
            dest: layer.dest.clone(),
            tree: Arc::new(tree),
        });
    }
    Ok(out)
}

/// `image` with `targets` removed: the image an `rm -rf` in it commits.
async fn remove_from_image(
    cx: &Context,
    call: &Call,
    image: &str,
    targets: &[String],
) -> Result<String> {
    let key = call.key;
    let mut cmd = vec!["rm".to_owned(), "-rf".to_owned(), "--".to_owned()];
    cmd.extend(targets.iter().cloned());
    if let Some(record) = recall(cx, &key).await? {
        cx.events
            .emit(&call.node, exec_name(&cmd), StepState::Cached, None);
        return Ok(record.image_id);
    }
    let record = cx
        .execs
        .run(key, || async {
            // Another engine on this state directory may be running the
            // same removal: wait for its lock, then look again (as execs do).
            let lock = cx.lock_record(RecordKind::Exec, key).await?;
            let _lock = match stored(cx, &key)? {
                Some(record) => {
                    drop(lock);
                    if usable(cx, &key, &record).await? {
                        cx.events
                            .emit(&call.node, exec_name(&cmd), StepState::Cached, None);
                        return Ok(Arc::new(record));
                    }
                    cx.lock_record(RecordKind::Exec, key).await?
                }
                None => lock,
            };
            let spec = ExecSpec {
                rootfs: RootfsSpec {
                    image_id: Some(image.to_owned()),
                    layers: Vec::new(),
                },
                args: cmd.clone(),
                env: vec![format!("PATH={DEFAULT_PATH}")],
                workdir: "/".into(),
                labels: [(crate::reproducible::STEP_LABEL.to_owned(), key.hex())].into(),
                commit_tag: cx.images.step(&key),
                ..ExecSpec::default()
            };
            let _slot = cx
                .exec_slots
                .acquire()
                .await
                .expect("the exec semaphore is never closed");
            cx.events
                .emit(&call.node, exec_name(&cmd), StepState::Running, None);
            let output = cx
                .runtime
                .exec(spec)
                .instrument(info_span!("remove", %key))
                .await
                .map_err(|error| cannot_remove(&error.to_string()));
            let output = output.and_then(|output| {
                if output.exit_code == 0 {
                    Ok(output)
                } else {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    Err(cannot_remove(&format!(
                        "rm exited with code {}: {}",
                        output.exit_code,
                        tail(&stderr, 2000)
                    )))
                }
            });
            let output = output.inspect_err(|_| {
                cx.events
                    .emit(&call.node, exec_name(&cmd), StepState::Failed, None);
            })?;
            let record = ExecRecord {
                image_id: output.image_id,
                cmd: cmd.clone(),
                stdout: String::new(),
                stderr: String::new(),
                combined: None,
                exit_code: 0,
                mounts: Vec::new(),
            };
            let json = serde_json::to_vec(&record).expect("records always serialise");
            cx.store.put(RecordKind::Exec, &key, &json)?;
            cx.events
                .emit(&call.node, exec_name(&cmd), StepState::Done, None);
            Ok(Arc::new(record))
        })
        .await?;
    Ok(record.image_id.clone())
}

fn cannot_remove(reason: &str) -> Error {
    Error::Unsupported {
        message: format!(
            "removing paths from a container's image runs `rm -rf` in that image, which failed ({reason}); an image without rm cannot have files removed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Entry, Tree};

    #[test]
    fn pruning_drops_entries_and_whole_layers() {
        let mut tree = Tree::default();
        tree.insert("a/b", Entry::dir(0o755)).unwrap();
        tree.insert("c", Entry::dir(0o755)).unwrap();
        let layer = |dest: &str| Layer {
            dest: dest.into(),
            tree: Arc::new(tree.clone()),
        };
        let pruned = prune_layers(
            &[layer("/"), layer("/x/y"), layer("/z")],
            &["/a".into(), "/x".into()],
        )
        .unwrap();
        assert_eq!(pruned.len(), 2);
        let kept: Vec<&String> = pruned[0].tree.entries.keys().collect();
        assert_eq!(kept, ["c"]);
        assert_eq!(pruned[1].dest, "/z");
        let inner = prune_layers(&[layer("/z")], &["/z/a/b".into()]).unwrap();
        let kept: Vec<&String> = inner[0].tree.entries.keys().collect();
        assert_eq!(kept, ["a", "c"]);
    }
}
