import assert from "node:assert/strict";
import { InvalidArgumentError, InvalidConfigError, isTrellisError, TrellisError } from "#lib/errors.js";

describe("errors", () => {
  it("names the field, the value and what is allowed", () => {
    const error = new InvalidArgumentError("--subnet-lease-ttl", "abc", "a duration such as 24h, 90m or 3600s");
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.message, '--subnet-lease-ttl "abc" is invalid: a duration such as 24h, 90m or 3600s');
    assert.equal(error.name, "InvalidArgumentError");
  });

  it("marks config errors with their own code", () => {
    const error = new InvalidConfigError("SubnetLen", 31, "must be between 18 and 30");
    assert.equal(error.code, "INVALID_CONFIG");
    assert.ok(error instanceof TrellisError);
    assert.ok(isTrellisError(error, "INVALID_CONFIG"));
    assert.ok(!isTrellisError(new TrellisError("IO", "x"), "INVALID_CONFIG"));
    assert.match(error.message, /^SubnetLen 31 is invalid/);
  });
});
