"""The article's "adding application": a function that adds two numbers."""
import datetime

START = datetime.datetime.now()  # module-level code: runs once per sandbox


def handler(event, context):
    print(f"adding {event['a']} + {event['b']} in {context.function_name}")
    return {"sum": event["a"] + event["b"], "sandbox_started": START.isoformat(),
            "remaining_ms": context.get_remaining_time_in_millis()}
