#!/usr/bin/python3
"""powerloss_fs: a FUSE file system that behaves like a page cache over a backing directory, and
can lose power on command.

    /usr/bin/python3 powerloss_fs.py --backing DIR --mount DIR --control SOCKET [--seed N]

Durability rules (what survives a power cut):
- File data and size become durable only on fsync/fdatasync of that file. write, truncate and
  close make nothing durable; mmap'd pages count once the kernel writes them back to us.
- A directory entry (create, mkdir, rename, unlink, rmdir, link) becomes durable only on fsync of
  the directory that holds it; one directory fsync makes all of that directory's entries durable.
  A file fsynced under a name whose directory was never fsynced is lost with that name.
- A clean unmount (no cut) makes everything durable, as a real file system's sync on umount does.

The whole tree is held in memory: the current view (what programs see) and the durable view. The
backing directory always holds exactly the durable view: fsync writes the file's changed pages (and
its size) to the backing file and fsyncs it; a directory fsync applies the directory's entry
changes to the backing directory and fsyncs it.

Power cut ("cut"): mode `drop` discards everything not yet durable; mode `torn` first keeps a
random half of the unsynced 4 KiB pages of each file (and each unsynced directory entry change with
probability 1/2), as a disk that was part-way through writing its cache back would. After a cut
every operation fails with EIO and the backing directory holds exactly what was durable.

Control: a unix socket, one command per line, one JSON line back:
    ping | stats | sync | cut drop|torn
    arm N drop|torn [NAME]   cut when the Nth write from now comes (counting only writes to files
                             named NAME when given, e.g. spool.db: the cut lands in a checkpoint)
SIGUSR1 cuts (drop), SIGUSR2 cuts (torn). The process unmounts and exits when its parent dies.

Pitfalls kept: no attribute named `lock` on this class (fusepy would take over
locking); fsync is implemented for real; no direct_io, so SQLite can mmap the -shm file.
"""
import argparse
import ctypes
import errno
import json
import os
import random
import shutil
import signal
import socket
import stat
import sys
import threading
import time

import fusepy
from fusepy import FUSE, FuseOSError, Operations

PAGE = 4096
ROOT = 1


def now_ns():
    return time.time_ns()


class Node:
    __slots__ = (
        'ino', 'is_dir', 'mode', 'uid', 'gid', 'atime', 'mtime', 'ctime', 'links', 'name',
        'data', 'dur', 'dirty', 'size_dirty', 'entries', 'dur_entries', 'dur_links',
    )

    def __init__(self, ino, is_dir, mode, name):
        self.ino = ino
        self.is_dir = is_dir
        self.mode = mode
        self.uid = os.getuid()
        self.gid = os.getgid()
        t = now_ns()
        self.atime = self.mtime = self.ctime = t
        self.links = 0
        self.name = name  # last name, for reports only
        # Files: current bytes, durable bytes, pages written since the last fsync.
        self.data = bytearray()
        self.dur = bytearray()
        self.dirty = set()
        self.size_dirty = False
        # Directories: current and durable entries (name -> ino).
        self.entries = {}
        self.dur_entries = {}
        # (parent ino, name) pairs under which this node is durably linked.
        self.dur_links = set()


class PowerLossFS(Operations):
    use_ns = True
    flag_nullpath_ok = 1  # operations on open (even unlinked) files come by file handle

    def __init__(self, backing, seed, log):
        self.backing = os.path.abspath(backing)
        self.rng = random.Random(seed)
        self.seed = seed
        self.log = log
        self._mutex = threading.RLock()  # never name an attribute `lock` (fusepy would use it)
        self.nodes = {}
        self.fhs = {}
        self.next_fh = 1
        self.next_ino = ROOT
        self.writes = 0
        self.writes_by_file = {}
        self.fsyncs = 0
        self.fsyncdirs = 0
        self.arm_at = None
        self.arm_mode = None
        self.arm_file = None  # count only writes to files of this name
        self.cut_info = None
        self.last_write = None
        self._load()

    # ----- model -----

    def _new_node(self, is_dir, mode, name):
        ino = self.next_ino
        self.next_ino += 1
        node = Node(ino, is_dir, mode, name)
        self.nodes[ino] = node
        return node

    def _load(self):
        """Reads the backing directory: everything in it is durable."""
        root = self._new_node(True, stat.S_IFDIR | 0o755, '/')
        root.links = 1

        def walk(node, path):
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    child = self._new_node(True, st.st_mode, entry.name)
                    walk(child, entry.path)
                elif stat.S_ISREG(st.st_mode):
                    child = self._new_node(False, st.st_mode, entry.name)
                    with open(entry.path, 'rb') as f:
                        content = f.read()
                    child.data = bytearray(content)
                    child.dur = bytearray(content)
                else:
                    self.log(f'skipping {entry.path}: not a file or directory')
                    continue
                child.mtime = child.ctime = st.st_mtime_ns
                node.entries[entry.name] = child.ino
                node.dur_entries[entry.name] = child.ino
                child.dur_links.add((node.ino, entry.name))
                child.links += 1

        walk(root, self.backing)

    def _split(self, path):
        parts = [p for p in path.split('/') if p]
        return parts

    def _resolve(self, path):
        node = self.nodes[ROOT]
        for part in self._split(path):
            if not node.is_dir:
                raise FuseOSError(errno.ENOTDIR)
            ino = node.entries.get(part)
            if ino is None:
                raise FuseOSError(errno.ENOENT)
            node = self.nodes[ino]
        return node

    def _parent(self, path):
        parts = self._split(path)
        if not parts:
            raise FuseOSError(errno.EINVAL)
        parent = self._resolve('/' + '/'.join(parts[:-1]))
        if not parent.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return parent, parts[-1]

    def _node(self, path, fh):
        if fh is not None and fh in self.fhs:
            return self.nodes[self.fhs[fh]]
        if path is None:
            raise FuseOSError(errno.EBADF)
        return self._resolve(path)

    def _new_fh(self, node):
        fh = self.next_fh
        self.next_fh += 1
        self.fhs[fh] = node.ino
        return fh

    @staticmethod
    def _mark(node, lo, hi):
        if hi > lo:
            node.dirty.update(range(lo // PAGE, (hi - 1) // PAGE + 1))

    def _resize(self, node, size):
        old = len(node.data)
        if size == old:
            return
        if size < old:
            del node.data[size:]
        else:
            node.data.extend(bytes(size - old))
        self._mark(node, min(old, size), max(old, size))
        node.size_dirty = True

    # ----- durable view and backing directory -----

    def _durable_paths(self, ino, seen=frozenset()):
        """Paths (relative to the backing dir) under which `ino` is durably reachable."""
        if ino == ROOT:
            return ['']
        out = []
        for parent, name in sorted(self.nodes[ino].dur_links):
            if parent in seen or parent == ino:
                continue
            for prefix in self._durable_paths(parent, seen | {ino}):
                out.append(os.path.join(prefix, name) if prefix else name)
        return out

    def _bpath(self, rel):
        return os.path.join(self.backing, rel) if rel else self.backing

    @staticmethod
    def _fsync_path(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_backing(self, path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def _materialize(self, node, path):
        """Writes `node`'s durable state (recursively for directories) at backing `path`."""
        self._remove_backing(path)
        if node.is_dir:
            os.mkdir(path, stat.S_IMODE(node.mode) or 0o755)
            for name, ino in sorted(node.dur_entries.items()):
                self._materialize(self.nodes[ino], os.path.join(path, name))
            self._fsync_path(path)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IMODE(node.mode) or 0o644)
            try:
                view = memoryview(node.dur)
                at = 0
                while at < len(view):
                    at += os.pwrite(fd, view[at:at + (1 << 20)], at)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _sync_file(self, node):
        """fsync: the current bytes and size become durable (only changed pages are written)."""
        if node.is_dir or (not node.dirty and not node.size_dirty):
            return
        size = len(node.data)
        dur = node.dur
        if len(dur) > size:
            del dur[size:]
        elif len(dur) < size:
            dur.extend(bytes(size - len(dur)))
        runs = []
        for page in sorted(node.dirty):
            lo = page * PAGE
            if lo >= size:
                break
            hi = min(lo + PAGE, size)
            if runs and runs[-1][1] == lo:
                runs[-1][1] = hi
            else:
                runs.append([lo, hi])
        for lo, hi in runs:
            dur[lo:hi] = node.data[lo:hi]
        for rel in self._durable_paths(node.ino):
            fd = os.open(self._bpath(rel), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                view = memoryview(dur)
                for lo, hi in runs:
                    at = lo
                    while at < hi:
                        at += os.pwrite(fd, view[at:hi], at)
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
        node.dirty.clear()
        node.size_dirty = False

    def _apply_dir(self, node, target):
        """Makes `target` (name -> ino) the durable entries of directory `node`."""
        old = node.dur_entries
        removed = [n for n, ino in old.items() if target.get(n) != ino]
        added = [n for n, ino in target.items() if old.get(n) != ino]
        if not removed and not added:
            return
        for name in removed:
            self.nodes[old[name]].dur_links.discard((node.ino, name))
        for name in added:
            self.nodes[target[name]].dur_links.add((node.ino, name))
        node.dur_entries = dict(target)
        for rel in self._durable_paths(node.ino):
            base = self._bpath(rel)
            for name in removed:
                self._remove_backing(os.path.join(base, name))
            for name in added:
                self._materialize(self.nodes[target[name]], os.path.join(base, name))
            self._fsync_path(base)

    def _sync_all(self):
        for node in list(self.nodes.values()):
            if not node.is_dir:
                self._sync_file(node)
        for node in list(self.nodes.values()):
            if node.is_dir:
                self._apply_dir(node, node.entries)

    # ----- power cut -----

    def _unsynced(self):
        files = {}
        for node in self.nodes.values():
            if node.is_dir:
                continue
            if node.dirty or node.size_dirty:
                files[node.name] = {
                    'pages': len(node.dirty),
                    'size': len(node.data),
                    'durable_size': len(node.dur),
                }
        dirs = {}
        for node in self.nodes.values():
            if node.is_dir:
                changed = sorted(
                    n for n in set(node.entries) | set(node.dur_entries) if node.entries.get(n) != node.dur_entries.get(n)
                )
                if changed:
                    dirs[node.name] = changed
        return files, dirs

    def _cut(self, mode, trigger):
        if self.cut_info is not None:
            return
        files, dirs = self._unsynced()
        info = {
            'mode': mode,
            'trigger': trigger,
            'at_write': self.writes,
            'last_write': self.last_write,
            'unsynced_files': files,
            'unsynced_dir_entries': dirs,
            'kept_pages': 0,
            'dropped_pages': 0,
        }
        self.cut_info = info  # from here on, every operation fails with EIO
        if mode == 'torn':
            rng = self.rng
            for node in list(self.nodes.values()):
                if node.is_dir or (not node.dirty and not node.size_dirty):
                    continue
                keep = sorted(p for p in node.dirty if rng.random() < 0.5)
                info['kept_pages'] += len(keep)
                info['dropped_pages'] += len(node.dirty) - len(keep)
                cur, dur = len(node.data), len(node.dur)
                if cur >= dur:
                    size = dur
                    if keep:
                        size = max(dur, min(cur, (keep[-1] + 1) * PAGE))
                else:
                    size = cur if rng.random() < 0.5 else dur
                new = bytearray(node.dur[:size])
                new.extend(bytes(size - len(new)))
                for page in keep:
                    lo = page * PAGE
                    hi = min(lo + PAGE, size, cur)
                    if lo < hi:
                        new[lo:hi] = node.data[lo:hi]
                node.dur = new
                node.dirty.clear()
                node.size_dirty = False
                for rel in self._durable_paths(node.ino):
                    self._materialize(node, self._bpath(rel))
            for node in list(self.nodes.values()):
                if not node.is_dir:
                    continue
                target = dict(node.dur_entries)
                for name in set(node.entries) | set(node.dur_entries):
                    if node.entries.get(name) != node.dur_entries.get(name) and rng.random() < 0.5:
                        if name in node.entries:
                            target[name] = node.entries[name]
                        else:
                            target.pop(name, None)
                self._apply_dir(node, target)
        else:
            info['dropped_pages'] = sum(f['pages'] for f in files.values())
        info['backing_matches'] = self._backing_matches()
        self.log(f'power cut: {json.dumps(info)}')

    def _backing_matches(self):
        """Self-check: the backing directory holds exactly the durable view."""

        def same(ino, path):
            node = self.nodes[ino]
            if node.is_dir:
                if not os.path.isdir(path):
                    return False
                if sorted(os.listdir(path)) != sorted(node.dur_entries):
                    return False
                return all(same(child, os.path.join(path, name)) for name, child in node.dur_entries.items())
            if not os.path.isfile(path):
                return False
            with open(path, 'rb') as f:
                return f.read() == bytes(node.dur)

        try:
            return same(ROOT, self.backing)
        except OSError:
            return False

    # ----- control -----

    def stats(self):
        files, dirs = self._unsynced()
        return {
            'writes': self.writes,
            'writes_by_file': self.writes_by_file,
            'fsyncs': self.fsyncs,
            'fsyncdirs': self.fsyncdirs,
            'armed_at': self.arm_at,
            'armed_file': self.arm_file,
            'seed': self.seed,
            'unsynced_files': files,
            'unsynced_dir_entries': dirs,
            'cut': self.cut_info,
        }

    def control(self, line):
        words = line.split()
        with self._mutex:
            if not words or words[0] == 'ping':
                return {'ok': True}
            if words[0] == 'stats':
                return self.stats()
            if words[0] == 'sync':
                if self.cut_info is not None:
                    return {'error': 'power is cut'}
                self._sync_all()
                return {'ok': True}
            if words[0] == 'cut':
                mode = words[1] if len(words) > 1 else 'drop'
                if mode not in ('drop', 'torn'):
                    return {'error': f'unknown mode {mode}'}
                self._cut(mode, {'op': 'command'})
                return self.stats()
            if words[0] == 'arm' and len(words) >= 2:
                mode = words[2] if len(words) > 2 else 'drop'
                if mode not in ('drop', 'torn'):
                    return {'error': f'unknown mode {mode}'}
                self.arm_file = words[3] if len(words) > 3 else None
                count = self.writes_by_file.get(self.arm_file, 0) if self.arm_file else self.writes
                self.arm_at = count + max(1, int(words[1]))
                self.arm_mode = mode
                return {'ok': True, 'armed_at': self.arm_at, 'file': self.arm_file}
            return {'error': f'unknown command {line.strip()}'}

    # ----- FUSE operations -----

    def __call__(self, op, *args):
        with self._mutex:
            if self.cut_info is not None and op not in ('init', 'destroy', 'release', 'releasedir'):
                raise FuseOSError(errno.EIO)
            if not hasattr(self, op):
                raise FuseOSError(errno.ENOSYS)
            return getattr(self, op)(*args)

    def init(self, path):
        print(json.dumps({'ready': True, 'pid': os.getpid()}), flush=True)

    def destroy(self, path):
        if self.cut_info is None:
            self._sync_all()
            self.log('unmounted cleanly: everything made durable')
        else:
            self.log('unmounted after the power cut')

    def statfs(self, path):
        st = os.statvfs(self.backing)
        return {k: getattr(st, k) for k in (
            'f_bsize', 'f_frsize', 'f_blocks', 'f_bfree', 'f_bavail', 'f_files', 'f_ffree', 'f_favail', 'f_namemax')}

    def getattr(self, path, fh=None):
        node = self._node(path, fh)
        size = 0 if node.is_dir else len(node.data)
        nlink = node.links
        if node.is_dir:
            nlink = 2 + sum(1 for ino in node.entries.values() if self.nodes[ino].is_dir)
        return {
            'st_ino': node.ino,
            'st_mode': node.mode,
            'st_nlink': nlink,
            'st_uid': node.uid,
            'st_gid': node.gid,
            'st_size': size,
            'st_blocks': (size + 511) // 512,
            'st_atime': node.atime,
            'st_mtime': node.mtime,
            'st_ctime': node.ctime,
        }

    def access(self, path, amode):
        self._resolve(path)
        return 0

    def chmod(self, path, mode):
        node = self._resolve(path)
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        node.ctime = now_ns()
        return 0

    def chown(self, path, uid, gid):
        node = self._resolve(path)
        if uid != -1:
            node.uid = uid
        if gid != -1:
            node.gid = gid
        node.ctime = now_ns()
        return 0

    def utimens(self, path, times=None):
        node = self._resolve(path)
        t = now_ns()
        node.atime, node.mtime = times if times else (t, t)
        node.ctime = t
        return 0

    def opendir(self, path):
        node = self._resolve(path)
        if not node.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return self._new_fh(node)

    def readdir(self, path, fh):
        node = self._node(path, fh)
        return ['.', '..'] + list(node.entries)

    def releasedir(self, path, fh):
        self.fhs.pop(fh, None)
        return 0

    def fsyncdir(self, path, datasync, fh):
        node = self._node(path, fh)
        self.fsyncdirs += 1
        self._apply_dir(node, node.entries)
        return 0

    def _link_new(self, parent, name, node):
        parent.entries[name] = node.ino
        node.links += 1
        node.name = name
        parent.mtime = parent.ctime = now_ns()

    def mkdir(self, path, mode):
        parent, name = self._parent(path)
        if name in parent.entries:
            raise FuseOSError(errno.EEXIST)
        node = self._new_node(True, stat.S_IFDIR | (mode & 0o7777), name)
        self._link_new(parent, name, node)
        return 0

    def create(self, path, mode, fi=None):
        parent, name = self._parent(path)
        ino = parent.entries.get(name)
        if ino is not None:
            node = self.nodes[ino]
            if node.is_dir:
                raise FuseOSError(errno.EISDIR)
            return self._new_fh(node)
        node = self._new_node(False, stat.S_IFREG | (mode & 0o7777), name)
        self._link_new(parent, name, node)
        return self._new_fh(node)

    def open(self, path, flags):
        node = self._resolve(path)
        if node.is_dir:
            raise FuseOSError(errno.EISDIR)
        return self._new_fh(node)

    def read(self, path, size, offset, fh):
        node = self._node(path, fh)
        node.atime = now_ns()
        return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        node = self._node(path, fh)
        self.writes += 1
        self.writes_by_file[node.name] = self.writes_by_file.get(node.name, 0) + 1
        end = offset + len(data)
        old = len(node.data)
        if offset > old:
            node.data.extend(bytes(offset - old))
        node.data[offset:end] = data
        self._mark(node, min(offset, old), end)
        if len(node.data) != old:
            node.size_dirty = True
        node.mtime = node.ctime = now_ns()
        self.last_write = {'file': node.name, 'offset': offset, 'size': len(data), 'n': self.writes}
        count = self.writes_by_file[node.name] if self.arm_file else self.writes
        if self.arm_at is not None and (self.arm_file is None or self.arm_file == node.name) and count >= self.arm_at:
            self._cut(self.arm_mode, {'op': 'write', 'file': node.name, 'offset': offset, 'size': len(data), 'n': self.writes})
            raise FuseOSError(errno.EIO)
        return len(data)

    def truncate(self, path, length, fh=None):
        node = self._node(path, fh)
        if node.is_dir:
            raise FuseOSError(errno.EISDIR)
        self._resize(node, length)
        node.mtime = node.ctime = now_ns()
        return 0

    def flush(self, path, fh):
        return 0  # close makes nothing durable

    def release(self, path, fh):
        self.fhs.pop(fh, None)
        return 0

    def fsync(self, path, datasync, fh):
        node = self._node(path, fh)
        self.fsyncs += 1
        if node.is_dir:
            self._apply_dir(node, node.entries)
        else:
            self._sync_file(node)
        return 0

    def unlink(self, path):
        parent, name = self._parent(path)
        ino = parent.entries.get(name)
        if ino is None:
            raise FuseOSError(errno.ENOENT)
        node = self.nodes[ino]
        if node.is_dir:
            raise FuseOSError(errno.EISDIR)
        del parent.entries[name]
        node.links -= 1
        node.ctime = parent.mtime = parent.ctime = now_ns()
        return 0

    def rmdir(self, path):
        parent, name = self._parent(path)
        ino = parent.entries.get(name)
        if ino is None:
            raise FuseOSError(errno.ENOENT)
        node = self.nodes[ino]
        if not node.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        if node.entries:
            raise FuseOSError(errno.ENOTEMPTY)
        del parent.entries[name]
        node.links -= 1
        parent.mtime = parent.ctime = now_ns()
        return 0

    def rename(self, old, new):
        src_parent, src_name = self._parent(old)
        dst_parent, dst_name = self._parent(new)
        ino = src_parent.entries.get(src_name)
        if ino is None:
            raise FuseOSError(errno.ENOENT)
        node = self.nodes[ino]
        if node.is_dir:
            # no moving a directory into itself
            p = dst_parent
            while True:
                if p.ino == node.ino:
                    raise FuseOSError(errno.EINVAL)
                parents = [pi for pi, n in self.nodes.items() if n.is_dir and p.ino in n.entries.values()]
                if not parents:
                    break
                p = self.nodes[parents[0]]
        target_ino = dst_parent.entries.get(dst_name)
        if target_ino == ino:
            return 0
        if target_ino is not None:
            target = self.nodes[target_ino]
            if target.is_dir and not node.is_dir:
                raise FuseOSError(errno.EISDIR)
            if node.is_dir and not target.is_dir:
                raise FuseOSError(errno.ENOTDIR)
            if target.is_dir and target.entries:
                raise FuseOSError(errno.ENOTEMPTY)
            target.links -= 1
        del src_parent.entries[src_name]
        dst_parent.entries[dst_name] = ino
        node.name = dst_name
        t = now_ns()
        node.ctime = src_parent.mtime = src_parent.ctime = dst_parent.mtime = dst_parent.ctime = t
        return 0

    def link(self, target, source):
        node = self._resolve(source)
        if node.is_dir:
            raise FuseOSError(errno.EPERM)
        parent, name = self._parent(target)
        if name in parent.entries:
            raise FuseOSError(errno.EEXIST)
        self._link_new(parent, name, node)
        return 0


def serve_control(fs, path, log):
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)

    def handle(conn):
        with conn:
            buf = b''
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    try:
                        answer = fs.control(line.decode())
                    except Exception as error:  # report, never die
                        answer = {'error': repr(error)}
                    conn.sendall((json.dumps(answer) + '\n').encode())

    def loop():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def watch_signals(fs):
    def loop():
        while True:
            sig = signal.sigwait({signal.SIGUSR1, signal.SIGUSR2})
            with fs._mutex:
                fs._cut('drop' if sig == signal.SIGUSR1 else 'torn', {'op': 'signal'})

    threading.Thread(target=loop, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backing', required=True)
    parser.add_argument('--mount', required=True)
    parser.add_argument('--control', required=True, help='unix socket path for commands')
    parser.add_argument('--seed', type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2 ** 32)

    def log(message):
        sys.stderr.write(f'powerloss_fs[{os.getpid()}]: {message}\n')
        sys.stderr.flush()

    # Exit (libfuse unmounts on SIGTERM) when the test that started us dies.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
    fs = PowerLossFS(args.backing, seed, log)
    serve_control(fs, args.control, log)
    watch_signals(fs)
    FUSE(
        fs,
        args.mount,
        foreground=True,
        nothreads=True,
        use_ino=True,
        hard_remove=True,
        big_writes=True,
        fsname='powerloss',
        subtype='powerloss',
    )


if __name__ == '__main__':
    main()
