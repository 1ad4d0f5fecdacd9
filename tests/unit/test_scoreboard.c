/*
 * test_scoreboard.c - lib/scoreboard.c: slots survive fork, heartbeats
 * written by a child are seen by the parent, claims never overlap.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/scoreboard.h"

Test(scoreboard, claim_bind_release)
{
	struct scoreboard *sb = scoreboard_create(2);
	int a, b;

	cr_assert_not_null(sb);
	a = scoreboard_claim(sb, 1, 7);
	b = scoreboard_claim(sb, 2, 7);
	cr_assert_eq(a, 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(scoreboard_claim(sb, 3, 7), -1, "full");
	scoreboard_bind(sb, a, 1234);
	cr_assert_eq(sb->slots[a].pid, 1234);
	cr_assert_eq(sb->slots[a].generation, 7);
	scoreboard_release(sb, a);
	cr_assert_eq(scoreboard_claim(sb, 4, 8), 0, "a released slot is reused");
	cr_assert_eq(sb->slots[0].id, 4);
	scoreboard_destroy(sb);
}

Test(scoreboard, child_heartbeat_is_seen_by_parent)
{
	struct scoreboard *sb = scoreboard_create(4);
	int slot = scoreboard_claim(sb, 1, 1), status;
	pid_t pid;

	sb->slots[slot].heartbeat_ms -= 5000; /* pretend it has been quiet */
	cr_assert_geq(scoreboard_silence_ms(&sb->slots[slot]), 5000);
	if ((pid = fork()) == 0) {
		scoreboard_beat(&sb->slots[slot]);
		sb->slots[slot].requests = 42;
		_exit(0);
	}
	cr_assert_gt(pid, 0);
	waitpid(pid, &status, 0);
	cr_assert_lt(scoreboard_silence_ms(&sb->slots[slot]), 1000);
	cr_assert_eq(sb->slots[slot].requests, 42);
	scoreboard_destroy(sb);
}
