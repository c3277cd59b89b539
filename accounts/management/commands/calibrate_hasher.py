"""Measure Argon2id on this machine and print the ARGON2_* settings that meet a time per hash."""

from django.core.management.base import BaseCommand, CommandError

from accounts.passwords.hashers import OWASP_MINIMUM_MEMORY, argon2_calibrate, argon2_time


class Command(BaseCommand):
    help = (
        "Measure Argon2id password hashing on this machine and print the costs (ARGON2_MEMORY_COST, "
        "ARGON2_TIME_COST, ARGON2_PARALLELISM) whose hash takes at most --target-ms: as much memory "
        "as fits, at the given iterations and lanes. Every login costs one hash."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--target-ms", type=float, required=True, help="Time one hash may take here, in milliseconds."
        )
        parser.add_argument(
            "--time-cost",
            type=int,
            default=2,
            help="Iterations (default 2, as OWASP recommends with 19 MiB).",
        )
        parser.add_argument("--parallelism", type=int, default=1, help="Lanes (default 1).")
        parser.add_argument(
            "--max-memory-mib",
            type=int,
            default=1024,
            help="Memory per hash never to exceed, in MiB (default 1024); past it the iterations grow.",
        )
        parser.add_argument(
            "--samples", type=int, default=5, help="Hashes timed per try; the fastest counts (default 5)."
        )

    def handle(self, *args, target_ms, time_cost, parallelism, max_memory_mib, samples, **options):
        if target_ms <= 0 or time_cost < 1 or parallelism < 1 or max_memory_mib < 1 or samples < 1:
            raise CommandError(
                "--target-ms, --time-cost, --parallelism, --max-memory-mib and --samples must be positive."
            )
        owasp = argon2_time(memory_cost=OWASP_MINIMUM_MEMORY[2], time_cost=2, parallelism=1, samples=samples)
        cost = argon2_calibrate(
            target_ms=target_ms,
            time_cost=time_cost,
            parallelism=parallelism,
            max_memory=max_memory_mib * 1024,
            samples=samples,
        )
        self.stdout.write(
            f"Argon2id on this machine (fastest of {samples} hashes per try), target {target_ms:g} ms:"
        )
        self.stdout.write(
            f"  {cost.memory_cost // 1024} MiB ({cost.memory_cost} KiB), {cost.time_cost} iterations, "
            f"{cost.parallelism} lane(s): {cost.milliseconds:.1f} ms per hash"
        )
        self.stdout.write(f"  for comparison, OWASP's 19 MiB, 2 iterations, 1 lane: {owasp:.1f} ms per hash")
        if cost.milliseconds > target_ms:
            self.stderr.write(f"No costs meet {target_ms:g} ms here; these are the cheapest tried.")
        if cost.below_owasp:
            self.stderr.write(
                "Warning: these costs are below OWASP's minimum for Argon2id "
                "(19 MiB with 2 iterations, or an equivalent); a stolen hash is cheaper to guess."
            )
        self.stdout.write("Put these in the environment or in .env:")
        self.stdout.write(f"ARGON2_MEMORY_COST={cost.memory_cost}")
        self.stdout.write(f"ARGON2_TIME_COST={cost.time_cost}")
        self.stdout.write(f"ARGON2_PARALLELISM={cost.parallelism}")
