from emailqueue_operator.main import run

run()
