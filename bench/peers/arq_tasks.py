"""arq worker settings + job coroutines for the cancellation benchmark (db 3).
ARQ_POLL_DELAY (env) sets Worker.poll_delay (arq default 0.5 s)."""
import os

import common
from arq.connections import RedisSettings


async def long_job(ctx, key, duration):
    # asyncio cancellation (Job.abort -> task.cancel()) raises CancelledError at the next await
    return await common.run_loop_async(key, duration)


async def trivial(ctx, key):
    common.trivial_job(key)


class WorkerSettings:
    functions = [long_job, trivial]
    redis_settings = RedisSettings(host=common.REDIS_HOST, port=common.REDIS_PORT, database=3)
    allow_abort_jobs = True
    poll_delay = float(os.environ.get("ARQ_POLL_DELAY", "0.5"))
    job_timeout = 300
    keep_result = 600
    max_tries = 1
