//! The plot manager: finds every plot under the configured directories (recursively), keeps
//! them open, and notices plots added, removed or replaced between refreshes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use spacetime::plot::PlotShape;

use super::config::PlotsConfig;
use super::file::{PlotFile, is_plot_path};
use super::scan::PlotHandle;

/// Deepest directory nesting followed during discovery.
const MAX_DEPTH: usize = 16;

/// What a refresh changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Plots loaded by this refresh.
    pub added: Vec<PathBuf>,
    /// Plots gone (deleted, replaced or now unreadable).
    pub removed: Vec<PathBuf>,
    /// Files that look like plots but were refused, with the reason (reported once).
    pub failed: Vec<(PathBuf, String)>,
}

#[derive(Debug)]
struct Loaded {
    handle: Arc<PlotHandle>,
    stamp: (u64, Option<SystemTime>),
}

/// Every usable plot under a set of directories.
#[derive(Debug)]
pub struct PlotManager {
    dirs: Vec<PathBuf>,
    shape: PlotShape,
    direct_io: bool,
    loaded: BTreeMap<PathBuf, Loaded>,
    refused: BTreeMap<PathBuf, (u64, Option<SystemTime>)>,
}

fn stamp(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Every `*.plot` file under `dir`, recursively (symbolic links to directories not followed).
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if is_plot_path(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

impl PlotManager {
    /// A manager for plots of `shape` under `dirs`; call [`PlotManager::refresh`] to load.
    pub fn new(dirs: Vec<PathBuf>, shape: PlotShape, direct_io: bool) -> Self {
        Self {
            dirs,
            shape,
            direct_io,
            loaded: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// A manager for the directories and read mode of a [`PlotsConfig`].
    pub fn from_config(config: &PlotsConfig, shape: PlotShape) -> Self {
        Self::new(config.dirs.clone(), shape, config.direct_io)
    }

    /// Rescans the directories: loads new plots, drops vanished or changed ones.
    pub fn refresh(&mut self) -> Changes {
        let mut changes = Changes::default();
        let mut present = BTreeMap::new();
        for dir in &self.dirs {
            for path in discover(dir) {
                if let Some(s) = stamp(&path) {
                    present.insert(path, s);
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .loaded
            .iter()
            .filter(|(p, l)| present.get(*p) != Some(&l.stamp))
            .map(|(p, _)| p.clone())
            .collect();
        for p in gone {
            self.loaded.remove(&p);
            changes.removed.push(p);
        }
        self.refused
            .retain(|p, s| present.get(p).is_some_and(|now| now == s));
        for (path, s) in present {
            if self.loaded.contains_key(&path) || self.refused.contains_key(&path) {
                continue;
            }
            match PlotFile::open_for(&path, &self.shape, self.direct_io) {
                Ok(plot) => {
                    self.loaded.insert(
                        path.clone(),
                        Loaded {
                            handle: Arc::new(PlotHandle::new(plot)),
                            stamp: s,
                        },
                    );
                    changes.added.push(path);
                }
                Err(e) => {
                    self.refused.insert(path.clone(), s);
                    changes.failed.push((path, e.to_string()));
                }
            }
        }
        changes
    }

    /// Stops using the plot at `path` (its scan failed: deleted, truncated, unreadable or
    /// corrupt). Unless the file is gone, it is refused by later refreshes as long as its
    /// length and modification time stay what they are now; a replaced or rewritten file is
    /// tried again. Returns false when no such plot was loaded.
    pub fn drop_plot(&mut self, path: &Path) -> bool {
        let Some(loaded) = self.loaded.remove(path) else {
            return false;
        };
        // The open file's own metadata: if the path now names another file (replaced), that
        // one differs and is tried by the next refresh.
        if let Ok(meta) = loaded.handle.plot().file().metadata()
            && meta.nlink() > 0
        {
            self.refused
                .insert(path.to_owned(), (meta.len(), meta.modified().ok()));
        }
        true
    }

    /// The loaded plots, in path order.
    pub fn plots(&self) -> Vec<Arc<PlotHandle>> {
        self.loaded.values().map(|l| l.handle.clone()).collect()
    }

    /// The loaded plot at `path`, if any.
    pub fn get(&self, path: &Path) -> Option<Arc<PlotHandle>> {
        self.loaded.get(path).map(|l| l.handle.clone())
    }

    /// Number of loaded plots.
    pub fn len(&self) -> usize {
        self.loaded.len()
    }

    /// True when no plot is loaded.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }

    /// Total bytes of the loaded plots.
    pub fn total_bytes(&self) -> u64 {
        self.loaded.values().map(|l| l.handle.plot().size()).sum()
    }
}
