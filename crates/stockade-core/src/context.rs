//! In-memory build contexts: a list of files, hashed and packed as a tar for the engine.

use crate::hash::ContentHasher;

/// One entry of a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Relative path with `/` separators.
    pub path: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub is_dir: bool,
    /// A symbolic link: `bytes` holds its target (sent as a link, never followed).
    pub is_symlink: bool,
}

impl ContextFile {
    pub fn new(path: impl Into<String>, bytes: Vec<u8>, mode: u32) -> Self {
        Self {
            path: path.into(),
            bytes,
            mode,
            is_dir: false,
            is_symlink: false,
        }
    }

    pub fn symlink(path: impl Into<String>, target: Vec<u8>) -> Self {
        Self {
            path: path.into(),
            bytes: target,
            mode: 0o777,
            is_dir: false,
            is_symlink: true,
        }
    }

    pub fn dir(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            bytes: Vec::new(),
            mode: 0o755,
            is_dir: true,
            is_symlink: false,
        }
    }
}

/// A build context, kept sorted by path so hashes and tars are deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    files: Vec<ContextFile>,
}

impl BuildContext {
    pub fn new(mut files: Vec<ContextFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Self { files }
    }

    pub fn files(&self) -> &[ContextFile] {
        &self.files
    }

    /// The bytes of the regular file at `path`, if the context holds one.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.path == path && !f.is_dir && !f.is_symlink)
            .map(|f| f.bytes.as_slice())
    }

    /// Feed paths, kinds, modes and contents into a content hash.
    pub fn hash_into(&self, hasher: &mut ContentHasher) {
        for file in &self.files {
            hasher
                .part(file.path.as_bytes())
                .part(if file.is_dir {
                    b"d"
                } else if file.is_symlink {
                    b"l"
                } else {
                    b"f"
                })
                .part(&file.mode.to_le_bytes())
                .part(&file.bytes);
        }
    }

    /// Replace the bytes of the file at `path` with `edit` of them (stockade's edit of the
    /// Dockerfile: tiers resolved to the namespace, the `LABEL` instruction appended).
    pub fn edit(&mut self, path: &str, edit: impl FnOnce(&[u8]) -> Vec<u8>) {
        if let Some(file) = self
            .files
            .iter_mut()
            .find(|f| f.path == path && !f.is_dir && !f.is_symlink)
        {
            file.bytes = edit(&file.bytes);
        }
    }

    /// The context as an uncompressed tar archive, with fixed owners and times.
    pub fn to_tar(&self) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for file in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(file.mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            if file.is_dir {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", file.path), std::io::empty())?;
            } else if file.is_symlink {
                use std::os::unix::ffi::OsStrExt;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(
                    &mut header,
                    &file.path,
                    std::ffi::OsStr::from_bytes(&file.bytes),
                )?;
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(file.bytes.len() as u64);
                builder.append_data(&mut header, &file.path, file.bytes.as_slice())?;
            }
        }
        builder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trips_files_modes_and_dirs() {
        let context = BuildContext::new(vec![
            ContextFile::new("run.sh", b"#!/bin/sh\n".to_vec(), 0o755),
            ContextFile::dir("certs"),
            ContextFile::new("Dockerfile", b"FROM x\n".to_vec(), 0o644),
        ]);
        let bytes = context.to_tar().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u32, bool)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                    e.header().entry_type().is_dir(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("Dockerfile".into(), 0o644, false),
                ("certs/".into(), 0o755, true),
                ("run.sh".into(), 0o755, false),
            ]
        );
    }
}
