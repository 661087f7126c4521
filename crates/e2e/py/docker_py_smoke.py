"""docker-py (PyPI `docker`) against berthd: usage `docker_py_smoke.py unix:///path/berth.sock NAME`.

Exits non-zero with a message on the first mismatch.
"""
import sys

import docker


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    url, name = sys.argv[1], sys.argv[2]
    c = docker.DockerClient(base_url=url)
    check(c.ping(), "ping")
    check(c.version()["ApiVersion"] >= "1.44", "api version")
    tags = [t for i in c.images.list() for t in i.tags]
    check("busybox:latest" in tags, f"busybox listed: {tags}")

    out = c.containers.run("busybox", ["sh", "-c", "echo hello-py"], remove=True)
    check(out == b"hello-py\n", f"run output {out!r}")

    try:
        c.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
        check(False, "non-zero exit raises ContainerError")
    except docker.errors.ContainerError as e:
        check(e.exit_status == 3, f"exit status {e.exit_status}")

    ct = c.containers.run("busybox", ["sh", "-c", "echo started; exec sleep 1000"], detach=True, name=name)
    ct.reload()
    check(ct.status == "running", f"status {ct.status}")
    r = ct.exec_run(["sh", "-c", "echo exec-out; exit 3"])
    check(r.exit_code == 3 and r.output == b"exec-out\n", f"exec {r}")
    logs = b""
    for _ in range(200):
        logs = ct.logs()
        if logs:
            break
    check(logs == b"started\n", f"logs {logs!r}")
    ct.stop(timeout=1)
    check(ct.wait()["StatusCode"] == 137, "wait status")
    ct.reload()
    check(ct.status == "exited" and ct.attrs["State"]["ExitCode"] == 137, "exited 137")
    ct.remove()
    try:
        c.containers.get(name)
        check(False, "removed container still found")
    except docker.errors.NotFound:
        pass
    print("ok")


if __name__ == "__main__":
    main()
