//! Multi-version storage: each logical row is a chain of tuple versions stamped with the
//! transaction that created them (`xmin`) and the one that deleted or replaced them
//! (`xmax`), plus unique and plain indexes over all versions, as in PostgreSQL's heap.
//!
//! Two simplifications, neither observable through the engine:
//! - An update appends to the same chain (PostgreSQL links a new tuple by `ctid`), so
//!   "the latest version of the row I saw" is the chain's tail.
//! - Aborted transactions are undone physically (their versions removed, their `xmax`
//!   cleared) instead of being marked aborted in a commit log. So any `xmin`/`xmax` found
//!   in storage belongs to a transaction that is either still running or committed.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use indexmap::IndexMap;

use super::row::Row;
use super::schema::TableSchema;
use super::value::Value;
use crate::fixed_hash::FixedState;

/// Transaction id; increases with each transaction started.
pub type Xid = u64;
/// Identity of a logical row (a version chain) inside its table.
pub type RowId = u64;

/// Which transactions' effects a reader sees: those finished before the snapshot was
/// taken. Since aborted work is removed from storage, "finished and still in storage"
/// means committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The first xid not yet assigned when the snapshot was taken.
    pub xmax: Xid,
    /// Transactions running when the snapshot was taken.
    pub active: Rc<BTreeSet<Xid>>,
}

impl Snapshot {
    /// Whether `me`, reading through this snapshot, sees the effects of `xid`.
    pub fn sees(&self, me: Xid, xid: Xid) -> bool {
        xid == me || (xid < self.xmax && !self.active.contains(&xid))
    }

    /// The oldest xid whose effects this snapshot may not see.
    pub fn xmin(&self) -> Xid {
        self.active
            .first()
            .copied()
            .unwrap_or(self.xmax)
            .min(self.xmax)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub xmin: Xid,
    pub xmax: Option<Xid>,
    pub tuple: Vec<Value>,
}

impl Version {
    pub fn visible_to(&self, me: Xid, snap: &Snapshot) -> bool {
        snap.sees(me, self.xmin) && !self.xmax.is_some_and(|x| snap.sees(me, x))
    }
}

/// An index: a unique one (the primary key is index 0 of [`Table::indexes`]), or a plain
/// one ([`Table::plain`], the same structure; nothing checks its keys for duplicates).
/// Keys with a NULL are not indexed: PostgreSQL treats NULLs as distinct in unique
/// constraints by default, and `col = NULL` matches nothing, so a lookup never needs them.
#[derive(Clone, Debug)]
pub struct UniqueIndex {
    pub name: String,
    pub columns: Vec<usize>,
    /// Hashed rather than ordered: the index is only ever looked up by key, never walked
    /// (so its order, changed by removals, decides nothing), and a B-tree compared whole
    /// key vectors at every node of every lookup.
    pub entries: IndexMap<Vec<Value>, BTreeSet<RowId>, FixedState>,
}

impl UniqueIndex {
    /// An index over `columns` of the versions already in `chains`.
    fn build(name: String, columns: Vec<usize>, chains: &BTreeMap<RowId, Vec<Version>>) -> Self {
        let mut index = UniqueIndex {
            name,
            columns,
            entries: IndexMap::default(),
        };
        for (&row, chain) in chains {
            for v in chain {
                if let Some(k) = index.key_of(&v.tuple) {
                    index.entries.entry(k).or_default().insert(row);
                }
            }
        }
        index
    }

    /// Chains that ever held `key` (and still hold it in some stored version), in row
    /// order.
    pub fn rows(&self, key: &[Value]) -> impl Iterator<Item = RowId> + '_ {
        self.entries.get(key).into_iter().flatten().copied()
    }

    pub fn key_of(&self, tuple: &[Value]) -> Option<Vec<Value>> {
        let key: Vec<Value> = self.columns.iter().map(|&c| tuple[c].clone()).collect();
        (!key.iter().any(Value::is_null)).then_some(key)
    }

    /// Whether `key_of(tuple)` is `Some(key)`, without building the key.
    pub fn has_key(&self, tuple: &[Value], key: &[Value]) -> bool {
        self.columns.len() == key.len()
            && self
                .columns
                .iter()
                .zip(key)
                .all(|(&c, k)| !k.is_null() && tuple[c] == *k)
    }
}

/// A foreign key of a table, resolved to table and column numbers.
#[derive(Clone, Debug)]
pub struct ForeignKeyRef {
    pub name: String,
    /// The referenced table.
    pub parent: usize,
    /// The referenced table's unique index (primary key or unique constraint) that the
    /// key is looked up in.
    pub parent_index: usize,
    /// The referencing columns, in the order of that index's columns.
    pub columns: Vec<usize>,
}

impl ForeignKeyRef {
    /// The key a child tuple references, `None` if a column of it is NULL (then the row
    /// references nothing, as with MATCH SIMPLE).
    pub fn key_of(&self, tuple: &[Value]) -> Option<Vec<Value>> {
        let key: Vec<Value> = self.columns.iter().map(|&c| tuple[c].clone()).collect();
        (!key.iter().any(Value::is_null)).then_some(key)
    }
}

#[derive(Clone, Debug)]
pub struct Table {
    pub schema: Rc<TableSchema>,
    /// The schema's column names, shared by every row read from the table.
    pub column_names: Rc<[String]>,
    pub chains: BTreeMap<RowId, Vec<Version>>,
    pub indexes: Vec<UniqueIndex>,
    /// Plain (non-unique) indexes, from `CREATE INDEX` or [`TableSchema::indexes`]: kept
    /// like the unique ones so that a WHERE pinning their columns reads only their rows.
    pub plain: Vec<UniqueIndex>,
    /// Foreign keys of this table.
    pub foreign_keys: Rc<[ForeignKeyRef]>,
    /// Foreign keys of other tables (or this one) that reference this table: (table,
    /// number of the key in its `foreign_keys`).
    pub referenced_by: Vec<(usize, usize)>,
    /// The sequence of each serial or identity column (by column number), which CREATE
    /// TABLE made: a number drawn is never drawn again, rollback or crash.
    pub sequences: Vec<Option<String>>,
    next_row: RowId,
}

impl Table {
    pub fn new(schema: TableSchema) -> Self {
        let names = schema.constraint_names();
        let indexes = schema
            .unique_column_indexes()
            .into_iter()
            .zip(names)
            .map(|(columns, name)| UniqueIndex {
                name,
                columns,
                entries: IndexMap::default(),
            })
            .collect();
        let plain = schema
            .indexes
            .iter()
            .filter_map(|i| {
                let columns = i
                    .columns
                    .iter()
                    .map(|c| schema.column_index(c))
                    .collect::<Option<Vec<usize>>>()?;
                Some(UniqueIndex {
                    name: i.name.clone(),
                    columns,
                    entries: IndexMap::default(),
                })
            })
            .collect();
        Table {
            column_names: schema.columns.iter().map(|c| c.name.clone()).collect(),
            sequences: vec![None; schema.columns.len()],
            schema: Rc::new(schema),
            chains: BTreeMap::new(),
            indexes,
            plain,
            foreign_keys: Rc::from(Vec::new()),
            referenced_by: Vec::new(),
            next_row: 0,
        }
    }

    /// The index of the version of `row` visible to `me` through `snap`, if any.
    pub fn visible(&self, row: RowId, me: Xid, snap: &Snapshot) -> Option<usize> {
        self.chains
            .get(&row)?
            .iter()
            .rposition(|v| v.visible_to(me, snap))
    }

    /// Chains that ever held `key` in unique index `index`.
    pub fn rows_with_key(&self, index: usize, key: &[Value]) -> Vec<RowId> {
        self.key_rows(index, key).collect()
    }

    /// [`Table::rows_with_key`] without collecting them.
    pub fn key_rows(&self, index: usize, key: &[Value]) -> impl Iterator<Item = RowId> + '_ {
        self.indexes[index].rows(key)
    }

    /// A stored tuple as a `Row` with the column names.
    pub fn row(&self, tuple: Vec<Value>) -> Row {
        Row::from_tuple(&self.column_names, tuple)
    }

    pub fn tail(&self, row: RowId) -> &Version {
        let chain = &self.chains[&row];
        &chain[chain.len() - 1]
    }

    fn index_add(&mut self, row: RowId, tuple: &[Value]) {
        for idx in self.indexes.iter_mut().chain(&mut self.plain) {
            if let Some(k) = idx.key_of(tuple) {
                idx.entries.entry(k).or_default().insert(row);
            }
        }
    }

    /// Drops the index entries of `tuple` that no remaining version of `row` still needs.
    fn index_forget(&mut self, row: RowId, tuple: &[Value]) {
        let chain = self.chains.get(&row);
        for idx in self.indexes.iter_mut().chain(&mut self.plain) {
            let Some(k) = idx.key_of(tuple) else { continue };
            let still_used = chain.is_some_and(|c| c.iter().any(|v| idx.has_key(&v.tuple, &k)));
            if still_used {
                continue;
            }
            if let Some(set) = idx.entries.get_mut(&k) {
                set.remove(&row);
                if set.is_empty() {
                    idx.entries.swap_remove(&k);
                }
            }
        }
    }

    /// A new row created by `xid`.
    pub fn insert(&mut self, xid: Xid, tuple: Vec<Value>) -> RowId {
        let row = self.next_row;
        self.next_row += 1;
        self.index_add(row, &tuple);
        self.chains.insert(
            row,
            vec![Version {
                xmin: xid,
                xmax: None,
                tuple,
            }],
        );
        row
    }

    /// `xid` replaces the tail of `row` with a new version.
    pub fn update(&mut self, xid: Xid, row: RowId, tuple: Vec<Value>) {
        self.index_add(row, &tuple);
        let chain = self
            .chains
            .get_mut(&row)
            .expect("updating a row that exists");
        if let Some(tail) = chain.last_mut() {
            tail.xmax = Some(xid);
        }
        chain.push(Version {
            xmin: xid,
            xmax: None,
            tuple,
        });
    }

    /// `xid` deletes the tail of `row`.
    pub fn delete(&mut self, xid: Xid, row: RowId) {
        let chain = self
            .chains
            .get_mut(&row)
            .expect("deleting a row that exists");
        if let Some(tail) = chain.last_mut() {
            tail.xmax = Some(xid);
        }
    }

    /// Reverses `insert`.
    pub fn undo_insert(&mut self, row: RowId) {
        if let Some(chain) = self.chains.remove(&row) {
            for v in chain {
                self.index_forget(row, &v.tuple);
            }
        }
    }

    /// Reverses `update`.
    pub fn undo_update(&mut self, row: RowId) {
        let Some(chain) = self.chains.get_mut(&row) else {
            return;
        };
        let popped = chain.pop();
        if let Some(tail) = chain.last_mut() {
            tail.xmax = None;
        }
        if let Some(v) = popped {
            self.index_forget(row, &v.tuple);
        }
    }

    /// Reverses `delete`.
    pub fn undo_delete(&mut self, row: RowId) {
        if let Some(tail) = self.chains.get_mut(&row).and_then(|c| c.last_mut()) {
            tail.xmax = None;
        }
    }

    /// Removes versions no snapshot can see any more: those deleted or replaced by a
    /// transaction `dead` says is committed-and-durable and older than every snapshot.
    /// Returns whether the chain still holds more than one version (worth revisiting).
    pub fn prune(&mut self, row: RowId, dead: impl Fn(Xid) -> bool) -> bool {
        let Some(chain) = self.chains.get_mut(&row) else {
            return false;
        };
        let n = chain
            .iter()
            .take_while(|v| v.xmax.is_some_and(&dead))
            .count();
        let removed: Vec<Version> = chain.drain(..n).collect();
        let empty = chain.is_empty();
        let revisit = chain.len() > 1 || chain.last().is_some_and(|v| v.xmax.is_some());
        if empty {
            self.chains.remove(&row);
        }
        for v in removed {
            self.index_forget(row, &v.tuple);
        }
        revisit
    }

    /// Adds a unique index over the rows already stored (every version, as the others).
    pub fn add_unique_index(&mut self, name: String, columns: Vec<usize>) {
        let index = UniqueIndex::build(name, columns, &self.chains);
        self.indexes.push(index);
    }

    /// Adds a plain index over the rows already stored.
    pub fn add_plain_index(&mut self, name: String, columns: Vec<usize>) {
        let index = UniqueIndex::build(name, columns, &self.chains);
        self.plain.push(index);
    }

    /// The number of stored versions (for tests of vacuum).
    pub fn version_count(&self) -> usize {
        self.chains.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::value::ColumnType;

    fn table() -> Table {
        Table::new(
            TableSchema::new("t")
                .column("id", ColumnType::Int)
                .column("v", ColumnType::Int)
                .primary_key(&["id"]),
        )
    }

    fn snap(xmax: Xid, active: &[Xid]) -> Snapshot {
        Snapshot {
            xmax,
            active: Rc::new(active.iter().copied().collect()),
        }
    }

    #[test]
    fn visibility_follows_snapshots() {
        let mut t = table();
        let r = t.insert(1, vec![Value::Int(1), Value::Int(10)]);
        t.update(2, r, vec![Value::Int(1), Value::Int(20)]);
        // A snapshot taken while 2 ran sees 1's version.
        assert_eq!(t.visible(r, 3, &snap(3, &[2])), Some(0));
        // After 2 committed, a new snapshot sees 2's version.
        assert_eq!(t.visible(r, 3, &snap(3, &[])), Some(1));
        // 2 sees its own version.
        assert_eq!(t.visible(r, 2, &snap(3, &[2])), Some(1));
        // A snapshot from before 1 finished sees nothing.
        assert_eq!(t.visible(r, 5, &snap(2, &[1])), None);
    }

    #[test]
    fn undo_restores_chain_and_index() {
        let mut t = table();
        let r = t.insert(1, vec![Value::Int(1), Value::Int(10)]);
        t.update(2, r, vec![Value::Int(2), Value::Int(10)]);
        assert_eq!(t.rows_with_key(0, &[Value::Int(2)]), vec![r]);
        t.undo_update(r);
        assert!(t.rows_with_key(0, &[Value::Int(2)]).is_empty());
        assert_eq!(t.tail(r).xmax, None);
        t.undo_insert(r);
        assert!(t.rows_with_key(0, &[Value::Int(1)]).is_empty());
        assert!(t.chains.is_empty());
    }

    #[test]
    fn prune_drops_dead_versions_only() {
        let mut t = table();
        let r = t.insert(1, vec![Value::Int(1), Value::Int(10)]);
        t.update(2, r, vec![Value::Int(1), Value::Int(20)]);
        t.update(3, r, vec![Value::Int(1), Value::Int(30)]);
        // Only xmax 2 is old enough.
        let revisit = t.prune(r, |x| x < 3);
        assert!(revisit);
        assert_eq!(t.version_count(), 2);
        assert_eq!(t.rows_with_key(0, &[Value::Int(1)]), vec![r]);
        t.delete(4, r);
        t.prune(r, |_| true);
        assert!(t.chains.is_empty());
        assert!(t.rows_with_key(0, &[Value::Int(1)]).is_empty());
    }
}
