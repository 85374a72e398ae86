print("ollie: under construction")
