/// The OpenAPI 3.0 description of the HTTP API, served at `/openapi.json`. A test keeps it
/// and the router in step, and the test suite fuzzes the API against it.
enum OpenAPIDocument {
    static let json = #"""
        {
          "openapi": "3.0.3",
          "info": {
            "title": "Fanfare",
            "version": "0.1.0",
            "description": "Server-Sent Events fan-out cluster: subscribe with EventSource, publish to a client, a user, a channel or everyone, and read cluster-wide counts. Every error is {\"ok\":false,\"error\":\"...\",\"code\":N}."
          },
          "paths": {
            "/api/sse/subscribe/{clientId}": {
              "get": {
                "operationId": "subscribeClient",
                "summary": "Open a stream for a client id",
                "tags": [
                  "streams"
                ],
                "parameters": [
                  {
                    "name": "clientId",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string",
                      "pattern": "^[A-Za-z0-9_.@-]{1,100}$"
                    }
                  },
                  {
                    "$ref": "#/components/parameters/channels"
                  },
                  {
                    "$ref": "#/components/parameters/token"
                  },
                  {
                    "$ref": "#/components/parameters/lastEventId"
                  },
                  {
                    "$ref": "#/components/parameters/LastEventIDHeader"
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The event stream: `retry:`, `__connected`, then events as they are published.",
                    "content": {
                      "text/event-stream": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/notifications/stream": {
              "get": {
                "operationId": "subscribe",
                "summary": "Open a stream",
                "tags": [
                  "streams"
                ],
                "parameters": [
                  {
                    "$ref": "#/components/parameters/clientIdQuery"
                  },
                  {
                    "$ref": "#/components/parameters/userIdQuery"
                  },
                  {
                    "$ref": "#/components/parameters/channels"
                  },
                  {
                    "$ref": "#/components/parameters/token"
                  },
                  {
                    "$ref": "#/components/parameters/lastEventId"
                  },
                  {
                    "$ref": "#/components/parameters/LastEventIDHeader"
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The event stream: `retry:`, `__connected`, then events as they are published.",
                    "content": {
                      "text/event-stream": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/events": {
              "get": {
                "operationId": "subscribeEvents",
                "summary": "Open a stream (alias used by dashboards)",
                "tags": [
                  "streams"
                ],
                "parameters": [
                  {
                    "$ref": "#/components/parameters/clientIdQuery"
                  },
                  {
                    "$ref": "#/components/parameters/userIdQuery"
                  },
                  {
                    "$ref": "#/components/parameters/channels"
                  },
                  {
                    "$ref": "#/components/parameters/token"
                  },
                  {
                    "$ref": "#/components/parameters/lastEventId"
                  },
                  {
                    "$ref": "#/components/parameters/LastEventIDHeader"
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The event stream: `retry:`, `__connected`, then events as they are published.",
                    "content": {
                      "text/event-stream": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/sse/notify": {
              "post": {
                "operationId": "notify",
                "summary": "Publish one event to exactly one target",
                "tags": [
                  "publish"
                ],
                "security": [
                  {
                    "bearer": []
                  },
                  {}
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/NotifyRequest"
                      }
                    }
                  }
                },
                "responses": {
                  "200": {
                    "description": "Stored and published.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/NotifyResponse"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "413": {
                    "$ref": "#/components/responses/Error"
                  },
                  "415": {
                    "$ref": "#/components/responses/Error"
                  },
                  "429": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/sse/metrics": {
              "get": {
                "operationId": "clusterMetrics",
                "summary": "Cluster-wide connection counts and a row per live node",
                "tags": [
                  "counts"
                ],
                "security": [
                  {
                    "bearer": []
                  },
                  {}
                ],
                "responses": {
                  "200": {
                    "description": "Counts.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/ClusterMetrics"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/sse/clients": {
              "get": {
                "operationId": "clients",
                "summary": "Connected clients cluster-wide",
                "tags": [
                  "counts"
                ],
                "security": [
                  {
                    "bearer": []
                  },
                  {}
                ],
                "responses": {
                  "200": {
                    "description": "Clients.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Clients"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/api/sse/clients/{clientId}": {
              "get": {
                "operationId": "client",
                "summary": "One client's connections per node",
                "tags": [
                  "counts"
                ],
                "security": [
                  {
                    "bearer": []
                  },
                  {}
                ],
                "parameters": [
                  {
                    "name": "clientId",
                    "in": "path",
                    "required": true,
                    "schema": {
                      "type": "string",
                      "pattern": "^[A-Za-z0-9_.@-]{1,100}$"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "The client.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Client"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/Error"
                  },
                  "401": {
                    "$ref": "#/components/responses/Error"
                  },
                  "403": {
                    "$ref": "#/components/responses/Error"
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  },
                  "503": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/metrics": {
              "get": {
                "operationId": "prometheus",
                "summary": "This node's metrics in Prometheus text",
                "tags": [
                  "operations"
                ],
                "responses": {
                  "200": {
                    "description": "Prometheus text format 0.0.4.",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "404": {
                    "$ref": "#/components/responses/Error"
                  }
                }
              }
            },
            "/healthz": {
              "get": {
                "operationId": "health",
                "summary": "Liveness",
                "tags": [
                  "operations"
                ],
                "responses": {
                  "200": {
                    "description": "Alive.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object",
                          "required": [
                            "ok"
                          ],
                          "properties": {
                            "ok": {
                              "type": "boolean"
                            }
                          }
                        }
                      }
                    }
                  }
                }
              }
            },
            "/readyz": {
              "get": {
                "operationId": "ready",
                "summary": "Readiness: false while draining or without Redis",
                "tags": [
                  "operations"
                ],
                "responses": {
                  "200": {
                    "description": "Ready.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Ready"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "Not ready.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Ready"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/client": {
              "get": {
                "operationId": "clientPage",
                "summary": "Browser page: join and watch notifications",
                "tags": [
                  "pages"
                ],
                "parameters": [
                  {
                    "name": "clientId",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "channels",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "string"
                    }
                  },
                  {
                    "name": "events",
                    "in": "query",
                    "required": false,
                    "schema": {
                      "type": "string"
                    }
                  }
                ],
                "responses": {
                  "200": {
                    "description": "HTML.",
                    "content": {
                      "text/html": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/admin": {
              "get": {
                "operationId": "adminPage",
                "summary": "Browser page: the cluster at a glance, and a form to send",
                "tags": [
                  "pages"
                ],
                "responses": {
                  "200": {
                    "description": "HTML.",
                    "content": {
                      "text/html": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/assets/fanfare.css": {
              "get": {
                "operationId": "pagesStyle",
                "tags": [
                  "pages"
                ],
                "responses": {
                  "200": {
                    "description": "CSS.",
                    "content": {
                      "text/css": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/assets/client.js": {
              "get": {
                "operationId": "clientScript",
                "tags": [
                  "pages"
                ],
                "responses": {
                  "200": {
                    "description": "Script.",
                    "content": {
                      "text/javascript": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/assets/admin.js": {
              "get": {
                "operationId": "adminScript",
                "tags": [
                  "pages"
                ],
                "responses": {
                  "200": {
                    "description": "Script.",
                    "content": {
                      "text/javascript": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/openapi.json": {
              "get": {
                "operationId": "openapi",
                "summary": "This description",
                "tags": [
                  "operations"
                ],
                "responses": {
                  "200": {
                    "description": "OpenAPI 3.0 document.",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object"
                        }
                      }
                    }
                  }
                }
              }
            }
          },
          "components": {
            "parameters": {
              "channels": {
                "name": "channels",
                "in": "query",
                "required": false,
                "description": "Comma-separated topics to join (each 1-128 of A-Z a-z 0-9 _ . : @ -).",
                "schema": {
                  "type": "string"
                }
              },
              "token": {
                "name": "token",
                "in": "query",
                "required": false,
                "description": "Subscriber JWT (also accepted as Authorization: Bearer or the token cookie).",
                "schema": {
                  "type": "string"
                }
              },
              "lastEventId": {
                "name": "lastEventId",
                "in": "query",
                "required": false,
                "description": "Resume after this event id (the Last-Event-ID header wins).",
                "schema": {
                  "type": "string"
                }
              },
              "LastEventIDHeader": {
                "name": "Last-Event-ID",
                "in": "header",
                "required": false,
                "description": "Resume after this event id; browsers send it when they reconnect.",
                "schema": {
                  "type": "string"
                }
              },
              "clientIdQuery": {
                "name": "clientId",
                "in": "query",
                "required": false,
                "description": "The client id; the node assigns one when absent.",
                "schema": {
                  "type": "string"
                }
              },
              "userIdQuery": {
                "name": "userId",
                "in": "query",
                "required": false,
                "description": "Ignored when tokens are on (the token's sub is the user).",
                "schema": {
                  "type": "string"
                }
              }
            },
            "securitySchemes": {
              "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A publisher or admin key, or a JWT with the publish or admin claim. Not needed in anonymous development mode."
              }
            },
            "responses": {
              "Error": {
                "description": "An error.",
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Error"
                    }
                  }
                }
              }
            },
            "schemas": {
              "Error": {
                "type": "object",
                "required": [
                  "ok",
                  "error",
                  "code"
                ],
                "properties": {
                  "ok": {
                    "type": "boolean",
                    "enum": [
                      false
                    ]
                  },
                  "error": {
                    "type": "string"
                  },
                  "code": {
                    "type": "integer"
                  }
                }
              },
              "NotifyRequest": {
                "description": "Exactly one target: clientId, userId, channel, or broadcast: true. Unknown fields are refused.",
                "oneOf": [
                  {
                    "type": "object",
                    "additionalProperties": false,
                    "required": [
                      "clientId"
                    ],
                    "properties": {
                      "clientId": {
                        "$ref": "#/components/schemas/ID"
                      },
                      "broadcast": {
                        "type": "boolean",
                        "enum": [
                          false
                        ]
                      },
                      "event": {
                        "$ref": "#/components/schemas/EventName"
                      },
                      "payload": {}
                    }
                  },
                  {
                    "type": "object",
                    "additionalProperties": false,
                    "required": [
                      "userId"
                    ],
                    "properties": {
                      "userId": {
                        "$ref": "#/components/schemas/ID"
                      },
                      "broadcast": {
                        "type": "boolean",
                        "enum": [
                          false
                        ]
                      },
                      "event": {
                        "$ref": "#/components/schemas/EventName"
                      },
                      "payload": {}
                    }
                  },
                  {
                    "type": "object",
                    "additionalProperties": false,
                    "required": [
                      "channel"
                    ],
                    "properties": {
                      "channel": {
                        "$ref": "#/components/schemas/Channel"
                      },
                      "broadcast": {
                        "type": "boolean",
                        "enum": [
                          false
                        ]
                      },
                      "event": {
                        "$ref": "#/components/schemas/EventName"
                      },
                      "payload": {}
                    }
                  },
                  {
                    "type": "object",
                    "additionalProperties": false,
                    "required": [
                      "broadcast"
                    ],
                    "properties": {
                      "broadcast": {
                        "type": "boolean",
                        "enum": [
                          true
                        ]
                      },
                      "event": {
                        "$ref": "#/components/schemas/EventName"
                      },
                      "payload": {}
                    }
                  }
                ]
              },
              "ID": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.@-]{1,100}$",
                "description": "A client or user id."
              },
              "Channel": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:@-]{1,128}$"
              },
              "EventName": {
                "type": "string",
                "description": "1-128 of A-Z a-z 0-9 _ . : @ -, not starting with __ (reserved). Default: message.",
                "pattern": "^(?:[A-Za-z0-9.:@-][A-Za-z0-9_.:@-]{0,127}|_[A-Za-z0-9.:@-][A-Za-z0-9_.:@-]{0,126}|_)$"
              },
              "NotifyResponse": {
                "type": "object",
                "required": [
                  "ok",
                  "sent",
                  "id",
                  "connections"
                ],
                "properties": {
                  "ok": {
                    "type": "boolean"
                  },
                  "sent": {
                    "type": "boolean"
                  },
                  "id": {
                    "type": "string",
                    "pattern": "^[0-9]+-[0-9]+$"
                  },
                  "connections": {
                    "type": "integer",
                    "minimum": 0
                  },
                  "clientId": {
                    "type": "string"
                  }
                }
              },
              "NodeRow": {
                "type": "object",
                "required": [
                  "nodeId",
                  "address",
                  "version",
                  "connections",
                  "clients",
                  "lastSeen"
                ],
                "properties": {
                  "nodeId": {
                    "type": "string"
                  },
                  "address": {
                    "type": "string"
                  },
                  "version": {
                    "type": "string"
                  },
                  "startedAt": {
                    "type": "integer"
                  },
                  "uptimeSeconds": {
                    "type": "integer"
                  },
                  "connections": {
                    "type": "integer"
                  },
                  "clients": {
                    "type": "integer"
                  },
                  "lastSeen": {
                    "type": "integer"
                  }
                }
              },
              "ClusterMetrics": {
                "type": "object",
                "required": [
                  "totalConnections",
                  "totalClients",
                  "averageConnectionsPerClient",
                  "nodes"
                ],
                "properties": {
                  "totalConnections": {
                    "type": "integer"
                  },
                  "totalClients": {
                    "type": "integer"
                  },
                  "averageConnectionsPerClient": {
                    "type": "number"
                  },
                  "nodes": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/NodeRow"
                    }
                  },
                  "thisNode": {
                    "type": "object"
                  }
                }
              },
              "Clients": {
                "type": "object",
                "required": [
                  "totalClients",
                  "clients"
                ],
                "properties": {
                  "totalClients": {
                    "type": "integer"
                  },
                  "clients": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": [
                        "clientId",
                        "connections"
                      ],
                      "properties": {
                        "clientId": {
                          "type": "string"
                        },
                        "connections": {
                          "type": "integer"
                        }
                      }
                    }
                  }
                }
              },
              "Client": {
                "type": "object",
                "required": [
                  "clientId",
                  "connections",
                  "nodes"
                ],
                "properties": {
                  "clientId": {
                    "type": "string"
                  },
                  "connections": {
                    "type": "integer"
                  },
                  "nodes": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "properties": {
                        "nodeId": {
                          "type": "string"
                        },
                        "connections": {
                          "type": "integer"
                        }
                      }
                    }
                  }
                }
              },
              "Ready": {
                "type": "object",
                "required": [
                  "ready",
                  "node",
                  "mode",
                  "draining",
                  "auth"
                ],
                "properties": {
                  "ready": {
                    "type": "boolean"
                  },
                  "node": {
                    "type": "string"
                  },
                  "mode": {
                    "type": "string",
                    "enum": [
                      "embedded",
                      "cluster"
                    ]
                  },
                  "draining": {
                    "type": "boolean"
                  },
                  "auth": {
                    "type": "string",
                    "enum": [
                      "anonymous",
                      "on"
                    ]
                  },
                  "access": {
                    "type": "object"
                  }
                }
              }
            }
          }
        }
        """#
}
