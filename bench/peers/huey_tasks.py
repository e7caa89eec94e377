"""Huey (RedisHuey, db 5) tasks for the benchmark."""
import common
from huey import RedisHuey
from huey.exceptions import CancelExecution

huey = RedisHuey("bench", host=common.REDIS_HOST, port=common.REDIS_PORT, db=5)


@huey.task(context=True)
def long_job(key, duration, coop=False, task=None):
    # Huey's revoke() only prevents a task from *starting*.  With coop=True the
    # loop polls huey.is_revoked(task) (public API, one Redis read) every
    # iteration -- a harness-written cooperative pattern, not a Huey feature.
    check = (lambda: huey.is_revoked(task)) if coop else None
    outcome = common.run_loop_sync(key, duration, check=check)
    if outcome == "cooperative-return":
        raise CancelExecution(retry=False)
    return outcome


@huey.task()
def trivial(key):
    common.trivial_job(key)
