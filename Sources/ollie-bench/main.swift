print("ollie-bench: under construction")
