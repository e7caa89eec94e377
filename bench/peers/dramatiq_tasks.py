"""Dramatiq broker (Redis db 4) + dramatiq-abort middleware + actors for the benchmark."""
import common
import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq_abort import Abortable
from dramatiq_abort.backends import RedisBackend

broker = RedisBroker(host=common.REDIS_HOST, port=common.REDIS_PORT, db=4)
abortable = Abortable(backend=RedisBackend(client=redis.Redis(host=common.REDIS_HOST, port=common.REDIS_PORT, db=4)))
broker.add_middleware(abortable)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=0, time_limit=300_000)
def long_job(key, duration):
    # dramatiq-abort raises Abort asynchronously in this thread (PyThreadState_SetAsyncExc);
    # no explicit check needed in the loop.
    return common.run_loop_sync(key, duration)


@dramatiq.actor(queue_name="bench", max_retries=0)
def trivial(key):
    common.trivial_job(key)
