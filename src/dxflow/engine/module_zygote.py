"""The warm AnsiballZ interpreter (see ``dxflow.engine.module_runner``).

Run by the host's own Python (not the engine's: this file imports only the standard library) as
``python -c <this source> CONTROL_FD ZIP``: it imports Ansible's module_utils from ``ZIP`` (the payload of an
earlier module run), then forks one child per request received on the ``CONTROL_FD`` socket (``SOCK_SEQPACKET``).
A request is a JSON record ``{"id", "cwd", "env"}`` (and ``"ids": [uid, gid, [groups]]`` to run as another user)
carrying three file descriptors (the child's stdin, stdout and stderr). The child starts its own session, takes those
descriptors, drops to the requested ids (groups, gid, then uid), takes the cwd and the environment, reads the AnsiballZ
wrapper from its stdin and runs it as ``__main__`` exactly as ``python`` reading a script from stdin would. Records
back: ``{"ready": [preloaded zip names]}`` or ``{"error": text}`` once, then ``{"id", "pid"}`` when a child has
started (its session set) and ``{"id", "status"}`` (a ``waitpid`` status) when it has ended.
"""

import contextlib
import json
import os
import selectors
import signal
import socket
import sys

PRELOAD = ("ansible.module_utils._internal._ansiballz._loader", "ansible.module_utils.basic")
PRELOAD_FOLDERS = ("ansible/module_utils/_internal/_json/_profiles/",)  # imported by name at run time
STDLIB = ("atexit", "base64", "datetime", "encodings.cp437", "glob", "importlib", "io", "runpy", "shutil", "tempfile")
STDLIB += ("threading", "zipfile")


class PayloadFinder:
    """Finds ``ansible.*`` modules that were not preloaded in the payload zips on ``sys.path`` first, as a cold
    interpreter with the payload zip at ``sys.path[0]`` would (the preloaded packages' ``__path__`` point at the
    zygote's own copy, which holds only the first payload's module)."""

    importers = {}

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if not fullname.startswith("ansible."):
            return None
        import zipimport

        folder = "/".join(fullname.split(".")[:-1])
        for entry in sys.path:
            if not entry.endswith(".zip"):
                continue
            location = entry + "/" + folder
            importer = cls.importers.get(location)
            if importer is None:
                try:
                    importer = cls.importers[location] = zipimport.zipimporter(location)
                except (zipimport.ZipImportError, OSError):
                    continue
            spec = importer.find_spec(fullname)
            if spec is not None:
                return spec
        return None


def preload(zip_path):
    """Import module_utils from ``zip_path``; the zip names of the modules it took from there."""
    for name in STDLIB:
        __import__(name)
    sys.path.insert(0, zip_path)
    try:
        for name in PRELOAD:
            try:
                __import__(name)
                break
            except ImportError:
                continue
        else:
            raise ImportError("no ansible.module_utils.basic in the payload")
        import zipfile

        with zipfile.ZipFile(zip_path) as archive:
            names = [n for n in archive.namelist() if n.startswith(PRELOAD_FOLDERS) and n.endswith(".py")]
        for name in names:
            __import__(name[: -len(".py")].replace("/", ".").replace(".__init__", ""))
    finally:
        sys.path.remove(zip_path)
    sys.meta_path.insert(0, PayloadFinder)
    prefix = zip_path + "/"
    files = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
    return sorted(f[len(prefix) :] for f in files if f.startswith(prefix))


def exit_code(exc):
    """The process exit code Python gives a SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    with contextlib.suppress(Exception):  # like the interpreter, never fail while exiting
        sys.stderr.write(str(exc.code) + "\n")
    return 1


def drop_privileges(ids):
    """Take the groups, gid and uid of ``ids`` (``[uid, gid, [groups]]``), or exit 126 saying why on stderr."""
    uid, gid, groups = ids
    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        os.write(2, f"cannot switch to uid {uid}: {exc.strerror}\n".encode())
        os._exit(126)


def run_child(fds, cwd, env, base_path, streams, ids=None):
    """In the forked child: become a fresh ``python`` (run by the user of ``ids``) reading its script from stdin,
    run it, exit."""
    import atexit
    import builtins
    import io
    import types

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096)
    if ids:
        drop_privileges(ids)
    if cwd:
        os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, (name, mode, encoding, errors, line_buffering) in enumerate(streams):
        raw = io.FileIO(fd, mode, closefd=False)
        buffer = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(buffer, encoding, errors, newline="\n", line_buffering=line_buffering)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    sys.argv = [""]
    sys.path[:] = ["", *base_path]
    main = types.ModuleType("__main__")
    main.__file__ = "<stdin>"
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    code = 0
    try:
        source = sys.stdin.buffer.read()
        exec(compile(source, "<stdin>", "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None and hasattr(threading, "_shutdown"):
            threading._shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        os._exit(code & 0xFF if code >= 0 else 1)


def send(control, record):
    control.send(json.dumps(record).encode())


def serve(control, base_path):
    """Fork a child per request; report its pid and its exit status."""
    import array

    streams = [
        (name, mode, getattr(sys, name).encoding, getattr(sys, name).errors, name == "stderr")
        for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w"))
    ]
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    children = {}
    size = array.array("i").itemsize
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                data, ancillary, _flags, _addr = control.recvmsg(1 << 20, socket.CMSG_SPACE(3 * size))
                if not data:
                    return
                fds = array.array("i")
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[: len(payload) - len(payload) % size])
                request = json.loads(data)
                started_r, started_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    try:
                        os.setsid()
                        run_child(list(fds), request.get("cwd"), request["env"], base_path, streams, request.get("ids"))
                    finally:
                        os._exit(127)
                os.close(started_w)
                os.read(started_r, 1)  # EOF once the child has its own session and closed its other descriptors
                os.close(started_r)
                for fd in fds:
                    os.close(fd)
                children[pid] = request["id"]
                send(control, {"id": request["id"], "pid": pid})
            else:
                while True:
                    try:
                        if not os.read(wake_r, 4096):
                            break
                    except BlockingIOError:
                        break
                while children:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    if pid in children:
                        send(control, {"id": children.pop(pid), "status": status})


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    try:
        import zipimport

        if not hasattr(zipimport.zipimporter, "find_spec"):
            raise ImportError("the warm runner needs Python 3.10 or newer on the host")
        preloaded = preload(sys.argv[2])
    except BaseException as exc:
        send(control, {"error": f"{type(exc).__name__}: {exc}"})
        return
    send(control, {"ready": preloaded})
    serve(control, list(sys.path))


if __name__ == "__main__":
    main()
