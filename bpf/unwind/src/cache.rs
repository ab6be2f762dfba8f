//! Tables shared by every process that maps the same file.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::builder::{build, build_image};
use crate::error::{Error, Result};
use crate::table::{FileKey, Table};

/// Built tables, found by path identity and shared by content identity.
///
/// A path is first matched by device, inode, size and mtime (one `stat`);
/// a file not seen before is built, and when its build id matches a table
/// already built (the same library in another container) that table is
/// shared instead of the new one kept.
#[derive(Debug, Default)]
pub struct TableCache {
    by_inode: HashMap<FileKey, Arc<Table>>,
    by_key: HashMap<FileKey, Arc<Table>>,
}

impl TableCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of the file at `path`, built on first use.
    pub fn get(&mut self, path: &Path) -> Result<Arc<Table>> {
        let meta = fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let inode = FileKey::of_metadata(&meta);
        if let Some(table) = self.by_inode.get(&inode) {
            return Ok(table.clone());
        }
        let table = build(path)?;
        let shared = self
            .by_key
            .entry(table.key().clone())
            .or_insert_with(|| Arc::new(table))
            .clone();
        self.by_inode.insert(inode, shared.clone());
        Ok(shared)
    }

    /// The table of an ELF image in memory (a vDSO), shared by build id.
    pub fn image(&mut self, bytes: &[u8], name: &Path) -> Result<Arc<Table>> {
        let table = build_image(bytes, name)?;
        Ok(self
            .by_key
            .entry(table.key().clone())
            .or_insert_with(|| Arc::new(table))
            .clone())
    }

    /// Number of distinct tables held.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no table is held.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}
