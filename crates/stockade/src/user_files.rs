//! The host user inside a sandbox, prepared from the host so that nothing inside runs as root:
//! `/etc/passwd` and `/etc/group` made from the image's own with the user in them (generated once
//! per image and user, kept in the cache, bind-mounted read-only), and the home volume given to
//! the user once, when stockade creates it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use stockade_core::handover::identity_files;
use stockade_core::hash::ContentHasher;
use stockade_core::labels;
use stockade_core::sandbox::{Mount, SandboxSpec};
use stockade_engine::Engine;

use crate::context::Context;
use crate::exit::CliError;
use crate::helper;

/// The largest `/etc/passwd` or `/etc/group` of an image that stockade reads.
const IDENTITY_FILE_LIMIT: u64 = 1024 * 1024;

/// The home volume's label naming the `uid:gid` its root was given to.
const OWNER_LABEL: &str = "io.stockade.owner";

/// Mount the identity files for `image_id` and make sure HOME's volume belongs to the user.
/// `helper_image` is an image stockade built itself (the foundation), for the never-started
/// containers this needs.
pub async fn prepare(
    engine: &Engine,
    ctx: &Context,
    spec: &mut SandboxSpec,
    image_id: &str,
    helper_image: &str,
) -> Result<(), CliError> {
    let (mounts, ()) = tokio::try_join!(
        identity_mounts(engine, ctx, spec, image_id),
        ensure_home(engine, ctx, spec, helper_image),
    )?;
    spec.mounts.extend(mounts);
    Ok(())
}

async fn identity_mounts(
    engine: &Engine,
    ctx: &Context,
    spec: &SandboxSpec,
    image_id: &str,
) -> Result<Vec<Mount>, CliError> {
    let user = &spec.user;
    let mut key = ContentHasher::new("stockade-identity-v1");
    key.part(image_id.as_bytes())
        .part(user.uid.to_string().as_bytes())
        .part(user.gid.to_string().as_bytes())
        .part(user.name.as_bytes())
        .part(user.home.as_os_str().as_encoded_bytes());
    for gid in &spec.groups {
        key.part(gid.to_string().as_bytes());
    }
    let key = key.finish();
    let dir = ctx
        .dirs
        .cache
        .join("identity")
        .join(key.get(..24).unwrap_or(&key));
    let (passwd, group) = (dir.join("passwd"), dir.join("group"));
    if !(passwd.is_file() && group.is_file()) {
        let files = helper::read_image_files(
            engine,
            &ctx.namespace,
            image_id,
            &["/etc/passwd", "/etc/group"],
            IDENTITY_FILE_LIMIT,
        )
        .await?;
        let text = |i: usize| {
            files
                .get(i)
                .cloned()
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default()
        };
        let Some((passwd_text, group_text)) =
            identity_files(&text(0), &text(1), user, &spec.groups)
        else {
            // A name or HOME that cannot stand in a passwd entry: the uid runs without a name.
            return Ok(Vec::new());
        };
        write_atomically(&passwd, passwd_text.as_bytes())
            .and_then(|()| write_atomically(&group, group_text.as_bytes()))
            .map_err(|e| {
                CliError::caused(
                    format!(
                        "cannot write the sandbox's passwd files under {}",
                        dir.display()
                    ),
                    e,
                    Some("check that stockade's cache directory is writable"),
                )
            })?;
    }
    Ok(vec![
        Mount {
            source: passwd,
            target: "/etc/passwd".into(),
            read_only: true,
        },
        Mount {
            source: group,
            target: "/etc/group".into(),
            read_only: true,
        },
    ])
}

/// Write through a temporary file and a rename, so a concurrent launch never mounts half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let scratch: PathBuf = dir.join(format!(
        ".{}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&scratch, bytes)?;
    std::fs::rename(&scratch, path)
}

/// The home volume's root belongs to the user: stockade creates the volume itself, labelled with
/// its owner, and gives its root to the user through a container that never starts.
async fn ensure_home(
    engine: &Engine,
    ctx: &Context,
    spec: &SandboxSpec,
    helper_image: &str,
) -> Result<(), CliError> {
    let user = &spec.user;
    let Some(home) = spec
        .volumes
        .iter()
        .find(|v| v.target == user.home && !v.volume.is_empty())
    else {
        return Ok(());
    };
    let owner = format!("{}:{}", user.uid, user.gid);
    // A volume stockade did not create with the label (an older stockade's) is given once, then
    // remembered; one removed is made again with the label.
    let record = ctx.dirs.cache.join("identity/homes").join(&home.volume);
    let mut remember = None;
    match engine.inspect_volume(&home.volume).await? {
        Some(info) if info.labels.get(OWNER_LABEL) == Some(&owner) => return Ok(()),
        Some(_) => {
            let stamp = owner.clone();
            if std::fs::read_to_string(&record).is_ok_and(|text| text == stamp) {
                return Ok(());
            }
            remember = Some(stamp);
        }
        None => {
            let mut volume_labels: HashMap<String, String> =
                home.labels.clone().into_iter().collect();
            volume_labels.insert(OWNER_LABEL.to_owned(), owner);
            volume_labels
                .entry(labels::KIND.to_owned())
                .or_insert_with(|| "home".to_owned());
            engine.create_volume(&home.volume, volume_labels).await?;
        }
    }
    helper::give_volume(
        engine,
        &ctx.namespace,
        helper_image,
        home,
        user.uid,
        user.gid,
    )
    .await?;
    if let Some(stamp) = remember
        && let Err(e) = write_atomically(&record, stamp.as_bytes())
    {
        tracing::debug!("cannot remember {}: {e}", record.display());
    }
    Ok(())
}
