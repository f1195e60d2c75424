"""The supervisor: spawns and watches broker processes, and hosts the controller and the
group coordinator for them."""
