// Runs a server on a clock CLOCK_SKEW_SECONDS off the machine's, as a host
// whose time drifted (Date.now only, what express-oauth2-jwt-bearer checks
// a DPoP proof's iat against; its JWT checks read new Date()):
//   CLOCK_SKEW_SECONDS=-120 node --import ./clock.mjs server.mjs ...
const skew = Number(process.env.CLOCK_SKEW_SECONDS || 0) * 1000;
const machineNow = Date.now;
Date.now = () => machineNow() + skew;
