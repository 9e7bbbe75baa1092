//! What a sandbox gets from stockade instead of a root step inside: the identity files
//! (`/etc/passwd` and `/etc/group` with the host user in them, made here from the image's own),
//! the secrets file and the directories under HOME that mounts need, handed to the created
//! container through the engine's archive API. The container then starts as the host uid:gid with
//! no capabilities: nothing inside runs as root to prepare it, so nothing the image holds (its
//! `sh`, `setpriv`, setuid binaries) can turn that preparation against the sandbox.
//!
//! An upload works on remote engines too (nothing is bind-mounted from the host), and the engine
//! unpacks it inside the container's own root, so a hostile image's symlinks resolve there.

use std::path::{Path, PathBuf};

use crate::identity::Identity;
use crate::secret_file;

/// Mode of the secrets file: readable by the sandbox user only.
pub const SECRETS_MODE: u32 = 0o400;

/// One archive to upload: extracted in `dir` inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub dir: String,
    pub tar: Vec<u8>,
}

/// What a sandbox is handed before start, besides its identity files (bind-mounted read-only:
/// see the binary's `user_files`).
#[derive(Debug, Clone)]
pub struct Handover<'a> {
    pub user: &'a Identity,
    /// Directories under HOME to create, owned by the user (parents of mounts inside HOME).
    pub home_dirs: &'a [PathBuf],
    /// Secret environment, rendered as the secrets file.
    pub secrets: &'a [(String, String)],
    /// With a read-only root only volumes can be written: HOME (a volume) and the secrets volume.
    pub read_only_root: bool,
}

impl Handover<'_> {
    /// The archives to upload, in order; empty when there is nothing to hand over.
    pub fn uploads(&self) -> std::io::Result<Vec<Upload>> {
        let user = self.user;
        let dirs: Vec<String> = self
            .home_dirs
            .iter()
            .filter(|dir| dir.starts_with(&user.home) && **dir != user.home)
            .map(|dir| dir.to_string_lossy().into_owned())
            .collect();
        let mut uploads = Vec::new();
        if self.read_only_root {
            // Only volumes: the directories go into HOME (the home volume), the secrets into the
            // secrets volume.
            let home = user.home.to_string_lossy();
            let mut tar = Tar::new();
            for dir in &dirs {
                tar.dir(dir.strip_prefix(home.as_ref()).unwrap_or(dir), user, 0o755)?;
            }
            if !tar.is_empty() {
                uploads.push(Upload {
                    dir: home.into_owned(),
                    tar: tar.finish()?,
                });
            }
            uploads.extend(secrets_upload(self.secrets, user, true)?);
            return Ok(uploads);
        }
        let mut tar = Tar::new();
        for dir in &dirs {
            tar.dir(dir, user, 0o755)?;
        }
        if !self.secrets.is_empty() {
            let (_, name) = secret_file::location(false);
            let text = secret_file::render(self.secrets);
            tar.file(name, text.as_bytes(), user, SECRETS_MODE)?;
        }
        if !tar.is_empty() {
            uploads.push(Upload {
                dir: "/".to_owned(),
                tar: tar.finish()?,
            });
        }
        Ok(uploads)
    }
}

/// The secrets file alone, owned by `owner` (mode 0400), for a container that gets nothing else
/// (helpers, or a read-only root where `/` cannot be written); `None` without secrets.
pub fn secrets_upload(
    secrets: &[(String, String)],
    owner: &Identity,
    read_only_root: bool,
) -> std::io::Result<Option<Upload>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let (dir, name) = secret_file::location(read_only_root);
    let mut tar = Tar::new();
    tar.file(
        name,
        secret_file::render(secrets).as_bytes(),
        owner,
        SECRETS_MODE,
    )?;
    Ok(Some(Upload {
        dir: dir.to_owned(),
        tar: tar.finish()?,
    }))
}

/// The login shell written into the user's passwd entry: the image root's shell when it is a
/// plain absolute path, else `/bin/sh`.
fn login_shell(image_passwd: &str) -> String {
    image_passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() == 7 && fields[2] == "0").then(|| fields[6].to_owned())
        })
        .find(|shell| shell.starts_with('/') && is_field(shell))
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

/// A value that can stand in a passwd/group field.
fn is_field(text: &str) -> bool {
    !text.is_empty() && !text.contains([':', '\n', '\r', '\0'])
}

/// The image's passwd and group with the host user in them: the entry with the host uid takes
/// the host's name, gid and HOME (or one is added); an entry that already has the host's name
/// under another uid is renamed out of the way; the host gid gets a group when it has none; the
/// user becomes a member of `extra_groups`. `None` when the host identity cannot be written as a
/// passwd entry (a `:` or newline in the name or HOME): the uid then runs without a name.
pub fn identity_files(
    image_passwd: &str,
    image_group: &str,
    user: &Identity,
    extra_groups: &[u32],
) -> Option<(String, String)> {
    let home = user.home.to_str()?;
    if !is_field(&user.name) || !is_field(home) || !home.starts_with('/') {
        return None;
    }
    let (uid, gid, name) = (
        user.uid.to_string(),
        user.gid.to_string(),
        user.name.as_str(),
    );
    let shell = login_shell(image_passwd);

    let mut passwd = String::new();
    let mut placed = false;
    for line in image_passwd.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = line.split(':').map(str::to_owned).collect();
        if fields.len() != 7 {
            // Not a passwd entry: dropped rather than passed on half-understood.
            continue;
        }
        if fields[2] == uid {
            if placed {
                continue;
            }
            fields[0] = name.to_owned();
            fields[3] = gid.clone();
            fields[5] = home.to_owned();
            fields[6] = shell.clone();
            placed = true;
        } else if fields[0] == name {
            fields[0] = format!("stockade-displaced-{}", fields[2]);
        }
        passwd.push_str(&fields.join(":"));
        passwd.push('\n');
    }
    if !placed {
        passwd.push_str(&format!("{name}:x:{uid}:{gid}:{name}:{home}:{shell}\n"));
    }

    let mut lines: Vec<Vec<String>> = image_group
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .filter(|fields| fields.len() == 4)
        .collect();
    if !lines.iter().any(|f| f[2] == gid) {
        let taken = lines.iter().any(|f| f[0] == name);
        let group_name = if taken {
            format!("stockade-{gid}")
        } else {
            name.to_owned()
        };
        lines.push(vec![group_name, "x".into(), gid.clone(), String::new()]);
    }
    for extra in extra_groups {
        let extra = extra.to_string();
        match lines.iter_mut().find(|f| f[2] == extra) {
            Some(fields) => {
                let members: Vec<&str> = fields[3].split(',').filter(|m| !m.is_empty()).collect();
                if !members.contains(&name) {
                    fields[3] = members
                        .into_iter()
                        .chain(std::iter::once(name))
                        .collect::<Vec<_>>()
                        .join(",");
                }
            }
            None => lines.push(vec![
                format!("stockade-{extra}"),
                "x".into(),
                extra,
                name.to_owned(),
            ]),
        }
    }
    let group = lines
        .into_iter()
        .map(|f| f.join(":") + "\n")
        .collect::<String>();
    Some((passwd, group))
}

/// A small tar writer with explicit owners and modes.
struct Tar(tar::Builder<Vec<u8>>, usize);

impl Tar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()), 0)
    }

    fn is_empty(&self) -> bool {
        self.1 == 0
    }

    fn header(kind: tar::EntryType, size: u64, owner: &Identity, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(u64::from(owner.uid));
        header.set_gid(u64::from(owner.gid));
        header.set_mtime(0);
        header
    }

    fn dir(&mut self, path: &str, owner: &Identity, mode: u32) -> std::io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || Path::new(path).components().any(|c| c.as_os_str() == "..") {
            return Ok(());
        }
        let mut header = Self::header(tar::EntryType::Directory, 0, owner, mode);
        self.1 += 1;
        self.0
            .append_data(&mut header, format!("{path}/"), std::io::empty())
    }

    fn file(
        &mut self,
        path: &str,
        bytes: &[u8],
        owner: &Identity,
        mode: u32,
    ) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, bytes.len() as u64, owner, mode);
        self.1 += 1;
        self.0.append_data(&mut header, path, bytes)
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        self.0.into_inner()
    }
}

/// An archive of one directory entry `path` owned by `uid:gid` (mode 0755): uploaded into a
/// never-started container, it gives a volume's root to that user without running anything.
pub fn directory_archive(path: &str, uid: u32, gid: u32) -> std::io::Result<Vec<u8>> {
    let owner = Identity {
        uid,
        gid,
        name: String::new(),
        home: PathBuf::new(),
    };
    let mut tar = Tar::new();
    tar.dir(path, &owner, 0o755)?;
    tar.finish()
}

/// An archive of one file `path` owned by `uid:gid` with `mode` (the gateway's policy files).
pub fn file_archive(
    path: &str,
    bytes: &[u8],
    uid: u32,
    gid: u32,
    mode: u32,
) -> std::io::Result<Vec<u8>> {
    let owner = Identity {
        uid,
        gid,
        name: String::new(),
        home: PathBuf::new(),
    };
    let mut tar = Tar::new();
    tar.file(path, bytes, &owner, mode)?;
    tar.finish()
}

/// Every regular file in a tar archive (a downloaded directory): (path, bytes), each at most
/// `limit` bytes (larger ones are left out).
pub fn files(tar: &[u8], limit: u64) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    let Ok(entries) = archive.entries() else {
        return out;
    };
    for mut entry in entries.flatten() {
        if entry.header().entry_type() != tar::EntryType::Regular || entry.size() > limit {
            continue;
        }
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        if entry.read_to_end(&mut bytes).is_ok() {
            out.push((path, bytes));
        }
    }
    out
}

/// The first regular file's bytes in a tar archive (the engine's answer to a download of one
/// file); `None` when there is none (the path was a symlink, a directory…).
pub fn first_file(tar: &[u8], limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    let mut entries = archive.entries().ok()?;
    let mut entry = entries.next()?.ok()?;
    if entry.header().entry_type() != tar::EntryType::Regular || entry.size() > limit {
        return None;
    }
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Identity {
        Identity {
            uid: 1000,
            gid: 1000,
            name: "ada".into(),
            home: "/home/ada".into(),
        }
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          node:x:1000:1000::/home/node:/bin/bash\n\
                          ada:x:1001:1001::/home/ada2:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnode:x:1000:\ndocker:x:999:\n";

    #[test]
    fn the_host_uid_takes_the_host_name_and_home() {
        let (passwd, group) = identity_files(PASSWD, GROUP, &ada(), &[999, 4242]).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\n\
             ada:x:1000:1000::/home/ada:/bin/bash\n\
             stockade-displaced-1001:x:1001:1001::/home/ada2:/bin/sh\n"
        );
        assert_eq!(
            group,
            "root:x:0:\nnode:x:1000:\ndocker:x:999:ada\nstockade-4242:x:4242:ada\n"
        );
    }

    #[test]
    fn a_missing_user_and_group_are_added() {
        let user = Identity {
            uid: 4321,
            gid: 4322,
            ..ada()
        };
        let (passwd, group) =
            identity_files("root:x:0:0:root:/root:/bin/sh\n", "", &user, &[]).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nada:x:4321:4322:ada:/home/ada:/bin/sh\n"
        );
        assert_eq!(group, "ada:x:4322:\n");
    }

    #[test]
    fn hostile_image_files_do_not_inject_entries() {
        // A root shell with a newline, a malformed line: neither reaches the result as written.
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbroken line\nx:x:0:0::/:/bin/sh:extra\n";
        let (out, _) = identity_files(passwd, "", &ada(), &[]).unwrap();
        assert_eq!(
            out,
            "root:x:0:0:root:/root:/bin/sh\nada:x:1000:1000:ada:/home/ada:/bin/sh\n"
        );
        let odd = Identity {
            name: "a:b".into(),
            ..ada()
        };
        assert_eq!(identity_files(PASSWD, GROUP, &odd, &[]), None);
    }

    #[test]
    fn one_upload_with_owners_and_modes() {
        let user = ada();
        let dirs = [PathBuf::from("/home/ada/.config")];
        let secrets = [("TOKEN".to_owned(), "s3cret".to_owned())];
        let handover = Handover {
            user: &user,
            home_dirs: &dirs,
            secrets: &secrets,
            read_only_root: false,
        };
        let uploads = handover.uploads().unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].dir, "/");
        let mut archive = tar::Archive::new(uploads[0].tar.as_slice());
        let entries: Vec<(String, u64, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("home/ada/.config/".to_owned(), 1000, 0o755),
                (".stockade-secrets".to_owned(), 1000, 0o400),
            ]
        );
        let nothing = Handover {
            user: &user,
            home_dirs: &[],
            secrets: &[],
            read_only_root: false,
        };
        assert!(nothing.uploads().unwrap().is_empty());
    }

    #[test]
    fn a_read_only_root_gets_volumes_only() {
        let user = ada();
        let dirs = [PathBuf::from("/home/ada/.config")];
        let secrets = [("TOKEN".to_owned(), "s3cret".to_owned())];
        let handover = Handover {
            user: &user,
            home_dirs: &dirs,
            secrets: &secrets,
            read_only_root: true,
        };
        let dirs: Vec<String> = handover
            .uploads()
            .unwrap()
            .into_iter()
            .map(|u| u.dir)
            .collect();
        assert_eq!(dirs, ["/home/ada", secret_file::SECRETS_VOLUME_DIR]);
    }
}
